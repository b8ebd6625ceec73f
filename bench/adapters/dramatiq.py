"""Dramatiq (optional): Redis broker, Results middleware, ``N`` processes of one thread."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from adapters.base import PENDING, Adapter, python_module_cmd


class DramatiqAdapter(Adapter):
    """``dramatiq dramatiq_tasks -p N -t 1``; waits with ``Message.get_result(block=True)``."""

    name = "dramatiq"

    def environment(self) -> dict[str, str]:
        """Connection settings read by ``tasks/dramatiq_tasks.py``."""
        return {"BENCH_REDIS_URL": str(self.spec.redis_url)}

    def prepare(self) -> None:
        """Import the actor."""
        import dramatiq_tasks
        from dramatiq.results import ResultMissing

        self.inc = getattr(dramatiq_tasks, self.spec.options.get("task", "inc"))
        self.missing = ResultMissing

    def worker_commands(self) -> list[list[str]]:
        """One dramatiq process tree: ``N`` worker processes with one thread each."""
        return [python_module_cmd("dramatiq", "dramatiq_tasks", "-p", str(self.spec.workers), "-t", "1")]

    def enqueue(self, x: int) -> Any:
        """``inc.send(x)`` returns the ``Message``."""
        return self.inc.send(x)

    def check(self, handle: Any) -> Any:
        """``get_result(block=False)``; ``ResultMissing`` means not stored yet."""
        try:
            return handle.get_result(block=False)
        except self.missing:
            return PENDING

    def wait(self, handle: Any, timeout: float) -> Any:
        """``Message.get_result(block=True, timeout=ms)``."""
        return handle.get_result(block=True, timeout=int(timeout * 1000))

    def version(self) -> str:
        """Dramatiq's version."""
        return version("dramatiq")


class DramatiqThreadsAdapter(DramatiqAdapter):
    """``dramatiq -p N -t 8``: ``N`` processes of as many threads as qframe-threads has."""

    name = "dramatiq-threads"

    def worker_commands(self) -> list[list[str]]:
        """``N`` worker processes with ``THREADS`` threads each."""
        from adapters.qframe_managers import THREADS

        args = ("dramatiq_tasks", "-p", str(self.spec.workers), "-t", str(THREADS))
        return [python_module_cmd("dramatiq", *args)]
