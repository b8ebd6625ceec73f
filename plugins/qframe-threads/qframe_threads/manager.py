"""The ``threads`` process manager: processes as ``prefork`` starts them, tasks in threads.

Each worker process runs ``threads`` lanes, each a thread with its own
connection to the pusher (the pusher sees every thread as a worker). A thread cannot be
killed: on a timeout the pusher records the task as timed out and the thread is
abandoned (:class:`qframe.threadlanes.ThreadLanes`); a new thread takes its place, and
the whole process is replaced when the abandoned thread has not returned within
``grace`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from qframe.builtin.prefork import PreforkManager
from qframe.config import Config
from qframe.errors import ConfigError
from qframe.processes import Channel
from qframe.threadlanes import ThreadLanes
from qframe_threads.options import DEFAULT_THREADS


class ThreadsManager(PreforkManager):
    """``prefork`` for the processes; ``threads`` threads run tasks in each worker."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.threads = int(config.plugin_values.get("threads", DEFAULT_THREADS))
        if self.threads < 1:
            raise ConfigError(f"option 'threads' must be at least 1, got {self.threads}")
        self.lanes = ThreadLanes(self.threads, config.grace)
        self._coroutines: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = {}
        self._lock = threading.Lock()

    def run_lanes(self, lane: Callable[[int], None]) -> None:
        """Run the worker's lanes as threads until every one of them left."""
        self.lanes.run(lane)

    def lane_timed_out(self, index: int) -> None:
        """Abandon the lane's thread (cancel its coroutine, if it awaits one); replace the process
        if the thread does not return within ``grace``."""
        thread = self.lanes.thread(index)
        with self._lock:
            running = self._coroutines.get(thread.ident or 0) if thread is not None else None
        self.lanes.abandon(index)
        if running is not None:
            loop, task = running
            loop.call_soon_threadsafe(task.cancel)

    def run_awaitable(self, awaitable: Awaitable[Any]) -> Any:
        """Run it on the thread's own loop, cancellable from :meth:`lane_timed_out`."""
        return super().run_awaitable(self._cancellable(awaitable))

    async def _cancellable(self, awaitable: Awaitable[Any]) -> Any:
        thread = threading.get_ident()
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            self._coroutines[thread] = (asyncio.get_running_loop(), task)
        try:
            return await awaitable
        finally:
            with self._lock:
                self._coroutines.pop(thread, None)

    def enforce_timeout(self, pid: int, channel: Channel, ack_id: str) -> None:
        """Tell the lane to let go of the task (a thread cannot be killed)."""
        with contextlib.suppress(OSError):  # the lane left already: its end settles the task
            channel.send(("timeout", ack_id))

    def startup_note(self) -> str | None:
        """Say how the per-worker options apply to threads."""
        return (
            f"process manager threads: {self.config.workers} worker processes x {self.threads} threads; "
            "recycle, max_rss and cpu_affinity apply per worker process (its threads share them); "
            "a timed-out thread is abandoned, and its process replaced after "
            f"{self.config.grace:g} s of grace"
        )
