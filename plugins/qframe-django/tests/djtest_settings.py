"""Settings of the test project: SQLite (``default``) and PostgreSQL (``pg``, started by conftest).

The cluster subprocesses the tests start read the same module; the environment says
which databases (the test databases pytest-django made) and which qframe settings.
"""

from __future__ import annotations

import json
import os
import tempfile

SECRET_KEY = "qframe-django-tests-not-secret"
SECRET_KEY_FALLBACKS = ["an-older-key"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "djtest_urls"
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "qframe_django",
    "djtest_app",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_SQLITE = os.environ.get("QFRAME_TEST_SQLITE") or os.path.join(
    tempfile.gettempdir(), f"qframe-django-test-{os.getpid()}.sqlite3"
)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _SQLITE,
        "OPTIONS": {"timeout": 20},
        "TEST": {"NAME": _SQLITE},
    },
    "pg": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("QFRAME_TEST_PG_NAME", "qframe"),
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": os.environ.get("QFRAME_TEST_PG_PORT", "1"),
        "OPTIONS": {"connect_timeout": 3},
    },
}
if os.environ.get("QFRAME_TEST_PG_PERSISTENT"):  # kept connections, checked when reused
    DATABASES["pg"].update(CONN_MAX_AGE=None, CONN_HEALTH_CHECKS=True)
if os.environ.get("QFRAME_TEST_NO_PG"):
    del DATABASES["pg"]

# Django Q2 style, as a migrating project has it; tests override through the environment.
Q_CLUSTER = json.loads(os.environ.get("QFRAME_TEST_Q_CLUSTER", "null")) or {
    "name": "djtest",
    "orm": os.environ.get("QFRAME_TEST_DB_ALIAS", "default"),
    "retry": 30,
    "timeout": 20,
    "workers": 2,
}
QFRAME = json.loads(os.environ.get("QFRAME_TEST_QFRAME", "{}"))
