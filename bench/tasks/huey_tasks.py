"""Huey's benchmark task, on RedisHuey or (``BENCH_HUEY_BACKEND=sqlite``) SqliteHuey."""

from __future__ import annotations

import os

from huey import Huey, RedisHuey, SqliteHuey

huey: Huey
if os.environ.get("BENCH_HUEY_BACKEND", "redis") == "sqlite":
    huey = SqliteHuey("bench", filename=os.environ["BENCH_HUEY_SQLITE_FILE"], results=True)
else:
    huey = RedisHuey(
        "bench",
        url=os.environ["BENCH_REDIS_URL"],
        results=True,
        notify_result=os.environ.get("BENCH_HUEY_NOTIFY_RESULT", "0") == "1",
    )


@huey.task()
def inc(x: int) -> int:
    """Return ``x + 1``."""
    return x + 1
