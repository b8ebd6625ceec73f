"""Minimal Django settings for Django Q2: its broker and the database of its results.

``BENCH_DJANGOQ_BROKER`` picks the broker: ``redis`` (default, ``BENCH_REDIS_URL``),
``sqs`` (boto3 on ``AWS_ENDPOINT_URL_SQS``), ``mongo`` (``BENCH_MONGO_URL``,
``BENCH_MONGO_DB``) or ``orm`` (the ``default`` database). Results go to the ORM: SQLite
(``BENCH_DJANGO_DB``) unless ``BENCH_PG_URL`` names a PostgreSQL database.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

SECRET_KEY = "qframe-bench-not-secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django_q"]
DATABASES: dict[str, Any] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DJANGO_DB", "django.sqlite3"),
        "OPTIONS": {"timeout": 30},
    }
}
if os.environ.get("BENCH_PG_URL"):
    _pg = urlsplit(os.environ["BENCH_PG_URL"])
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _pg.path.lstrip("/"),
        "USER": _pg.username or "postgres",
        "HOST": _pg.hostname or "127.0.0.1",
        "PORT": str(_pg.port or 5432),
    }
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

Q_CLUSTER: dict[str, Any] = {
    "name": os.environ.get("BENCH_DJANGOQ_NAME", "bench"),
    "workers": int(os.environ.get("BENCH_WORKERS", "2")),
    # Keep every result: the benchmark reads all of them (the default keeps 250).
    "save_limit": 0,
    "timeout": 60,
    "retry": 120,
}
_broker = os.environ.get("BENCH_DJANGOQ_BROKER", "redis")
if _broker == "redis":
    _redis = urlsplit(os.environ["BENCH_REDIS_URL"])
    Q_CLUSTER["redis"] = {
        "host": _redis.hostname or "127.0.0.1",
        "port": _redis.port or 6379,
        "db": int(_redis.path.lstrip("/") or 0),
        "password": _redis.password,
    }
elif _broker == "sqs":
    # Long polling as Django Q2's docs advise; without it the pusher short-polls nonstop.
    Q_CLUSTER["sqs"] = {"aws_region": "us-east-1", "receive_message_wait_time_seconds": 20}
elif _broker == "mongo":
    Q_CLUSTER["mongo"] = {"host": os.environ["BENCH_MONGO_URL"]}
    Q_CLUSTER["mongo_db"] = os.environ["BENCH_MONGO_DB"]
elif _broker == "orm":
    Q_CLUSTER["orm"] = "default"
else:
    raise ValueError(f"BENCH_DJANGOQ_BROKER={_broker!r}: expected redis, sqs, mongo or orm")
