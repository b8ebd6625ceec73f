"""Tasks for end-to-end tests of clusters and drivers; each run appends a line to $QFRAME_TEST_LOG.

Enqueue them by dotted path (``qframe.testing.tasks.inc``) from any test: every cluster
can import them. A line is ``<kind>\t<fields...>\t<pid>``, written with one ``write`` on
an ``O_APPEND`` descriptor so that lines from many worker processes never mix.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from typing import Any


def record(*fields: Any) -> None:
    """Append one tab-separated line ending with this process's pid to $QFRAME_TEST_LOG."""
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


def ledger(tag: str, seconds: float) -> str:
    """Record ``began``, sleep ``seconds``, record ``ended``, return ``tag``: a finished run leaves both."""
    record("began", tag)
    time.sleep(seconds)
    record("ended", tag)
    return tag


def spin(tag: str, seconds: float) -> str:
    """Record the call, then keep a CPU busy in pure Python for ``seconds`` (no sleep, no I/O)."""
    record("spin", tag)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    return tag


def read_socket(tag: str, port: int) -> bytes:
    """Record the call, then block reading from ``127.0.0.1:port`` (a peer that never sends)."""
    record("read", tag)
    with socket.create_connection(("127.0.0.1", port)) as conn:
        return conn.recv(1)


def suicide(tag: str) -> None:
    """Record the call, then kill this worker with SIGKILL (a poison task)."""
    record("suicide", tag)
    os.kill(os.getpid(), signal.SIGKILL)


def boom(tag: str) -> None:
    """Record the call, then raise ValueError."""
    record("boom", tag)
    raise ValueError(f"boom {tag}")


def echo_kwargs(**kwargs: Any) -> dict[str, Any]:
    """Return the keyword arguments the task received."""
    return kwargs


def affinity() -> list[int]:
    """The CPUs this worker may run on."""
    return sorted(os.sched_getaffinity(0))


def grow(mebibytes: int) -> int:
    """Keep ``mebibytes`` MiB alive in this worker (a leaking task); return the pid."""
    _LEAK.append(bytearray(mebibytes * 1024 * 1024))
    return os.getpid()


_LEAK: list[bytearray] = []


def flaky(tag: str, failures: int) -> int:
    """Record the run (attempt, time); raise ValueError on the first ``failures`` attempts, then return it."""
    from qframe.current import current_task

    task = current_task()
    attempt = task.attempt if task is not None else 0
    record("flaky", tag, attempt, time.time())
    if attempt <= failures:
        raise ValueError(f"flaky {tag} attempt {attempt}")
    return attempt


def asks_retry(tag: str, countdown: float) -> int:
    """Record the run; on the first attempt ask for a retry in ``countdown`` s, then return the attempt."""
    from qframe.current import current_task

    task = current_task()
    assert task is not None, "asks_retry runs only in a worker"
    record("asks_retry", tag, task.attempt, time.time())
    if task.attempt == 1:
        task.retry(countdown=countdown)
    return task.attempt


def until_marker(path: str) -> str:
    """Record the run (attempt); raise ValueError until the file ``path`` exists, then return "fixed"."""
    from qframe.current import current_task

    task = current_task()
    record("until_marker", path, task.attempt if task is not None else 0)
    if not os.path.exists(path):
        raise ValueError(f"marker {path} is not there yet")
    return "fixed"


def note_hook(result: Any) -> None:
    """A result hook: record the task's name, whether it succeeded, and the first line of its result."""
    first_line = str(result.result).splitlines()[-1:] or [""]
    record("hook", result.name, result.success, first_line[0], time.time())


def held_hook(result: Any) -> None:
    """A slow result hook: record ``hook_began``, wait until the file ``result.kwargs["release"]`` exists.

    Then record ``hook_ended``. It gives up waiting after 60 s, so a test that never
    releases it still ends. Enqueue ``echo_kwargs(release=path)`` with ``hook=held_hook``.
    """
    record("hook_began", result.name, time.time())
    release = str(result.kwargs["release"])
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    record("hook_ended", result.name, time.time())


def raising_hook(result: Any) -> None:
    """A result hook that records the call, then raises RuntimeError."""
    record("raising_hook", result.name)
    raise RuntimeError(f"hook refused {result.name}")


async def nap(tag: str, seconds: float) -> str:
    """An ``async def`` task: record the call, ``await asyncio.sleep(seconds)``, return ``tag``."""
    record("nap", tag)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        record("nap-cancelled", tag)
        raise
    return tag


async def hog_loop(tag: str, seconds: float) -> str:
    """An ``async def`` task that blocks its event loop: record the call, ``time.sleep(seconds)``."""
    record("hog", tag)
    time.sleep(seconds)
    return tag
