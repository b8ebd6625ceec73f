"""Minimal Django settings for qframe-django: the ``orm`` broker and store on ``BENCH_PG_URL``.

No ``QFRAME`` settings: the broker is the ``orm`` broker on ``default``, results go to the
same database and payloads are signed with ``SECRET_KEY`` (qframe-django's defaults).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

_pg = urlsplit(os.environ["BENCH_PG_URL"])

SECRET_KEY = "qframe-bench-not-secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["qframe_django"]
DATABASES: dict[str, Any] = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _pg.path.lstrip("/"),
        "USER": _pg.username or "postgres",
        "HOST": _pg.hostname or "127.0.0.1",
        "PORT": str(_pg.port or 5432),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
