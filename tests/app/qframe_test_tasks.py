"""Tasks the cluster tests enqueue; each run appends a line to $QFRAME_TEST_LOG."""

from __future__ import annotations

import os
import signal
import time
from typing import Any


def record(*fields: Any) -> None:
    """Append one tab-separated line (one write, so lines from many processes never mix)."""
    line = "\t".join(str(f) for f in (*fields, os.getpid())) + "\n"
    fd = os.open(os.environ["QFRAME_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def inc(x: int) -> int:
    record("inc", x)
    return x + 1


def sleepy(tag: str, seconds: float) -> str:
    record("sleepy", tag)
    time.sleep(seconds)
    return tag


def suicide(tag: str) -> None:
    record("suicide", tag)
    os.kill(os.getpid(), signal.SIGKILL)


def boom(tag: str) -> None:
    record("boom", tag)
    raise ValueError(f"boom {tag}")


def echo_kwargs(**kwargs: Any) -> dict[str, Any]:
    return kwargs
