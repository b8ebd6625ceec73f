"""Huey: RedisHuey (or SqliteHuey) with results, ``huey_consumer -w N -k process``."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from adapters.base import PENDING, Adapter, python_module_cmd


class HueyAdapter(Adapter):
    """Huey's consumer with ``N`` worker processes; waits with ``Result.get(blocking=True)``."""

    name = "huey"
    backends = ("redis", "sqlite")

    def environment(self) -> dict[str, str]:
        """Connection settings read by ``tasks/huey_tasks.py``."""
        opts = self.spec.options
        if self.spec.backend == "sqlite":
            return {
                "BENCH_HUEY_BACKEND": "sqlite",
                "BENCH_HUEY_SQLITE_FILE": str(self.workdir / "huey.db"),
            }
        return {
            "BENCH_HUEY_BACKEND": "redis",
            "BENCH_REDIS_URL": str(self.spec.redis_url),
            "BENCH_HUEY_NOTIFY_RESULT": "1" if opts.get("huey_notify_result") else "0",
        }

    def prepare(self) -> None:
        """Import the task module (creates the SQLite file in sqlite mode)."""
        import huey_tasks

        self.huey = huey_tasks.huey
        self.inc = huey_tasks.inc

    def worker_commands(self) -> list[list[str]]:
        """One consumer with ``N`` worker processes.

        On SQLite, which Huey polls, the consumer's polling delay is pinned to
        ``huey_sqlite_poll`` (default 0.05 s, qframe's ``poll``) instead of Huey's
        0.1 s backing off to 10 s, so both systems poll alike.
        """
        argv = python_module_cmd(
            "huey.bin.huey_consumer",
            "huey_tasks.huey",
            "-w",
            str(self.spec.workers),
            "-k",
            "process",
        )
        if self.spec.backend == "sqlite":
            poll = str(self.spec.options.get("huey_sqlite_poll", 0.05))
            argv += ["--delay", poll, "--max-delay", poll, "--backoff", "1.0"]
        return [argv]

    def enqueue(self, x: int) -> Any:
        """Calling a Huey task enqueues it and returns its ``Result``."""
        return self.inc(x)

    def check(self, handle: Any) -> Any:
        """``Result.get()`` without blocking (None means not stored yet)."""
        value = handle.get(blocking=False)
        return PENDING if value is None else value

    def wait(self, handle: Any, timeout: float) -> Any:
        """``Result.get(blocking=True, timeout=...)``."""
        return handle.get(blocking=True, timeout=timeout)

    def version(self) -> str:
        """Huey's version."""
        return version("huey")
