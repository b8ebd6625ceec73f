"""Celery's benchmark task: Redis as broker and result backend."""

from __future__ import annotations

import os
import time

from celery import Celery

app = Celery("celery_tasks", broker=os.environ["BENCH_REDIS_URL"], backend=os.environ["BENCH_REDIS_URL"])
app.conf.update(
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
