"""Celery's benchmark task: Redis as broker and result backend, or ``BENCH_CELERY_*`` ones."""

from __future__ import annotations

import json
import os
import time

from celery import Celery

_broker = os.environ.get("BENCH_CELERY_BROKER") or os.environ["BENCH_REDIS_URL"]
_backend = os.environ.get("BENCH_CELERY_BACKEND") or os.environ["BENCH_REDIS_URL"]
app = Celery("celery_tasks", broker=_broker, backend=_backend)
app.conf.update(
    broker_transport_options=json.loads(os.environ.get("BENCH_CELERY_TRANSPORT", "{}")),
    task_default_queue=os.environ.get("BENCH_CELERY_QUEUE", "celery"),
    broker_connection_retry_on_startup=True,
    task_ignore_result=False,
    worker_hijack_root_logger=True,
)


@app.task
def inc(x: int) -> int:
    """Return ``x + 1``."""
    return x + 1


@app.task
def nap(x: int) -> int:
    """Wait ``$BENCH_NAP`` s (default 50 ms) as blocking I/O would, then return ``x + 1``."""
    time.sleep(float(os.environ.get("BENCH_NAP", "0.05")))
    return x + 1
