"""Minimal Django settings for Django Q2: Redis broker, results in the ORM (SQLite)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

_redis = urlsplit(os.environ["BENCH_REDIS_URL"])

SECRET_KEY = "qframe-bench-not-secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django_q"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["BENCH_DJANGO_DB"],
        "OPTIONS": {"timeout": 30},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

Q_CLUSTER = {
    "name": "bench",
    "workers": int(os.environ.get("BENCH_WORKERS", "2")),
    # Keep every result: the benchmark reads all of them (the default keeps 250).
    "save_limit": 0,
    "timeout": 60,
    "retry": 120,
    "redis": {
        "host": _redis.hostname or "127.0.0.1",
        "port": _redis.port or 6379,
        "db": int(_redis.path.lstrip("/") or 0),
        "password": _redis.password,
    },
}
