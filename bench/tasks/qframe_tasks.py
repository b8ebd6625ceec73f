"""qframe's benchmark tasks; enqueued by name as ``qframe_tasks.inc`` (and ``nap``, ``anap`` in io mode)."""

import asyncio
import os
import time

#: Seconds an I/O-bound benchmark task waits (the harness's ``--io-sleep``).
NAP = float(os.environ.get("BENCH_NAP", "0.05"))


def inc(x: int) -> int:
    """Return ``x + 1``."""
    return x + 1


def nap(x: int) -> int:
    """Wait ``NAP`` seconds as blocking I/O would, then return ``x + 1``."""
    time.sleep(NAP)
    return x + 1


async def anap(x: int) -> int:
    """Wait ``NAP`` seconds as awaited I/O would, then return ``x + 1``."""
    await asyncio.sleep(NAP)
    return x + 1
