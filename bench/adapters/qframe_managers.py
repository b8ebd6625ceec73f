"""qframe under the ``threads`` and ``asyncio`` process managers (plugins qframe-threads, qframe-asyncio)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from adapters.qframe import QframeAdapter

#: Threads per worker process for every threaded system in io mode (qframe, Celery, Dramatiq).
THREADS = 8


class QframeThreadsAdapter(QframeAdapter):
    """``qframe cluster`` with ``process_manager=threads``, ``THREADS`` threads per worker process."""

    name = "qframe-threads"

    def environment(self) -> dict[str, str]:
        """qframe's settings plus the manager and its option."""
        return {
            **super().environment(),
            "QFRAME_PROCESS_MANAGER": "threads",
            "QFRAME_THREADS": str(THREADS),
        }

    def version(self) -> str:
        """qframe's version and the plugin's."""
        return f"{super().version()} (qframe-threads {version('qframe-threads')})"


class QframeAsyncioAdapter(QframeAdapter):
    """``qframe cluster`` with ``process_manager=asyncio`` (concurrency 100); tasks are ``async def``."""

    name = "qframe-asyncio"

    def environment(self) -> dict[str, str]:
        """qframe's settings plus the manager."""
        return {
            **super().environment(),
            "QFRAME_PROCESS_MANAGER": "asyncio",
        }

    def enqueue(self, x: int) -> Any:
        """The ``async def`` twin of the task: ``anap`` for ``nap``."""
        task = self.spec.options.get("task", "inc")
        return self.client.async_task(f"qframe_tasks.{'anap' if task == 'nap' else task}", x)

    def version(self) -> str:
        """qframe's version and the plugin's."""
        return f"{super().version()} (qframe-asyncio {version('qframe-asyncio')})"
