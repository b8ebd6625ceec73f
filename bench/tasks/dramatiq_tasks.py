"""Dramatiq's benchmark actor: Redis broker with the Results middleware on Redis."""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"])
broker.add_middleware(Results(backend=RedisBackend(url=os.environ["BENCH_REDIS_URL"])))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True)
def inc(x: int) -> int:
    """Return ``x + 1``."""
    return x + 1


@dramatiq.actor(store_results=True)
def nap(x: int) -> int:
    """Wait ``$BENCH_NAP`` s (default 50 ms) as blocking I/O would, then return ``x + 1``."""
    time.sleep(float(os.environ.get("BENCH_NAP", "0.05")))
    return x + 1
