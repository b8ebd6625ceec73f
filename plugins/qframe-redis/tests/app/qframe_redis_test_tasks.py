"""Tasks the Redis end-to-end tests enqueue; each run appends a line to $QFRAME_TEST_LOG.

A line is ``<kind>\t<fields...>\t<pid>``, written with one ``write`` on an ``O_APPEND``
descriptor so that lines from many worker processes never mix.
"""

from __future__ import annotations

import os
import time
from typing import Any


def record(*fields: Any) -> None:
    """Append one tab-separated line ending with this process's pid."""
    line = "\t".join(str(f) for f in (*fields, os.getpid())) + "\n"
    fd = os.open(os.environ["QFRAME_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def inc(x: int) -> int:
    """Record the call and return ``x + 1``."""
    record("inc", x)
    return x + 1


def sleepy(tag: str, seconds: float) -> str:
    """Record the call, sleep ``seconds`` and return ``tag``."""
    record("sleepy", tag)
    time.sleep(seconds)
    return tag
