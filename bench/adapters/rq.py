"""RQ: ``N`` separate ``rq worker`` processes on one queue, results kept."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from adapters.base import PENDING, Adapter, python_call_cmd


class RQAdapter(Adapter):
    """Two ``rq worker`` processes (RQ's default forking worker); waits with ``latest_result``."""

    name = "rq"

    def prepare(self) -> None:
        """Connect the producer's queue."""
        import rq_tasks
        from redis import Redis
        from rq import Queue

        self.conn = Redis.from_url(str(self.spec.redis_url))
        self.queue = Queue("bench", connection=self.conn)
        self.inc = rq_tasks.inc

    def worker_commands(self) -> list[list[str]]:
        """``rq worker`` per worker process, each its own process group."""
        return [
            python_call_cmd(
                "rq.cli:main",
                "worker",
                "bench",
                "--url",
                str(self.spec.redis_url),
                "--name",
                f"bench-{self.workdir.name}-{i}",
            )
            for i in range(self.spec.workers)
        ]

    def enqueue(self, x: int) -> Any:
        """``Queue.enqueue(inc, x)`` returns the ``Job``."""
        return self.queue.enqueue(self.inc, x)

    def check(self, handle: Any) -> Any:
        """The job's latest ``Result`` without blocking."""
        result = handle.latest_result()
        if result is None:
            return PENDING
        if result.type != result.Type.SUCCESSFUL:
            raise RuntimeError(f"rq job {handle.id} failed: {result.exc_string}")
        return result.return_value

    def wait(self, handle: Any, timeout: float) -> Any:
        """``Job.latest_result(timeout=...)``: a blocking read of the job's result stream."""
        result = handle.latest_result(timeout=max(1, round(timeout)))
        return None if result is None else result.return_value

    def close(self) -> None:
        """Close the producer's connection."""
        self.conn.close()

    def version(self) -> str:
        """RQ's version."""
        return version("rq")
