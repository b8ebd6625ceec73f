"""Celery: Redis broker and result backend, prefork pool of ``N`` processes."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from adapters.base import PENDING, Adapter, python_module_cmd


class CeleryAdapter(Adapter):
    """``celery worker -c N -P prefork -O fair``; waits with ``AsyncResult.get()``."""

    name = "celery"

    def environment(self) -> dict[str, str]:
        """Connection settings read by ``tasks/celery_tasks.py``."""
        return {"BENCH_REDIS_URL": str(self.spec.redis_url)}

    def prepare(self) -> None:
        """Import the Celery app and task."""
        import celery_tasks

        self.app = celery_tasks.app
        self.inc = getattr(celery_tasks, self.spec.options.get("task", "inc"))

    def worker_commands(self) -> list[list[str]]:
        """One worker with a prefork pool of ``N`` processes and no cluster chatter."""
        return [
            python_module_cmd(
                "celery",
                "-A",
                "celery_tasks",
                "worker",
                "-c",
                str(self.spec.workers),
                "-P",
                "prefork",
                "-O",
                "fair",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "INFO",
                "-n",
                f"bench-{self.workdir.name}@%h",
            )
        ]

    def enqueue(self, x: int) -> Any:
        """``inc.delay(x)`` returns an ``AsyncResult``."""
        return self.inc.delay(x)

    def check(self, handle: Any) -> Any:
        """The stored result if the task is ready (one GET on the backend)."""
        if not handle.ready():
            return PENDING
        return handle.get(timeout=1)

    def wait(self, handle: Any, timeout: float) -> Any:
        """``AsyncResult.get(timeout=...)`` (Redis pub/sub under the hood)."""
        return handle.get(timeout=timeout)

    def close(self) -> None:
        """Close the backend's pub/sub connection."""
        self.app.close()

    def version(self) -> str:
        """Celery's version."""
        return version("celery")


class CeleryThreadsAdapter(CeleryAdapter):
    """``celery worker -P threads -c N*8``: one process, as many threads as qframe-threads has."""

    name = "celery-threads"

    def worker_commands(self) -> list[list[str]]:
        """The prefork command with the thread pool instead."""
        from adapters.qframe_managers import THREADS

        [command] = super().worker_commands()
        command[command.index("prefork")] = "threads"
        command[command.index("-c") + 1] = str(self.spec.workers * THREADS)
        return [command]
