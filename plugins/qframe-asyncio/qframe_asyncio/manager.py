"""The ``asyncio`` process manager: processes as ``prefork`` starts them, tasks on an event loop.

Each worker process runs one event loop (uvloop when installed) and ``concurrency``
lanes. A lane holds its own connection to the pusher (the pusher sees each lane as a
worker) and hands what an ``async def`` task returns to the loop, so up to
``concurrency`` coroutines run on it at once. A plain function runs in the lane's
own thread, off the loop. On a timeout the pusher records the task as timed out and the
coroutine is cancelled; a task that blocks the loop cannot be cancelled, and the process
is replaced when it has not returned within ``grace`` seconds.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from qframe.builtin.prefork import PreforkManager
from qframe.config import Config
from qframe.errors import ConfigError
from qframe.processes import Channel
from qframe.threadlanes import ThreadLanes
from qframe_asyncio.loop import LoopCall, LoopThread
from qframe_asyncio.options import DEFAULT_CONCURRENCY


class AsyncioManager(PreforkManager):
    """``prefork`` for the processes; one event loop and ``concurrency`` lanes in each worker."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.concurrency = int(config.plugin_values.get("concurrency", DEFAULT_CONCURRENCY))
        if self.concurrency < 1:
            raise ConfigError(f"option 'concurrency' must be at least 1, got {self.concurrency}")
        self.lanes = ThreadLanes(self.concurrency, config.grace)
        self._loop: LoopThread | None = None
        self._running: dict[int, LoopCall] = {}
        self._lock = threading.Lock()

    @property
    def loop(self) -> LoopThread:
        """This process's event loop, started on first use (only worker processes use one)."""
        with self._lock:
            if self._loop is None:
                self._loop = LoopThread()
            return self._loop

    def run_lanes(self, lane: Callable[[int], None]) -> None:
        """Start the loop, then run the lanes until every one of them left."""
        assert self.loop
        self.lanes.run(lane)

    def run_awaitable(self, awaitable: Awaitable[Any]) -> Any:
        """Run the coroutine on the process's loop; wait in the lane's thread for its result."""
        call = self.loop.submit(awaitable)
        lane = threading.get_ident()
        with self._lock:
            self._running[lane] = call
        try:
            return call.result()
        finally:
            with self._lock:
                self._running.pop(lane, None)

    def lane_timed_out(self, index: int) -> None:
        """Cancel the lane's coroutine; replace the process if it has not returned within ``grace``."""
        thread = self.lanes.thread(index)
        with self._lock:
            call = self._running.get(thread.ident or 0) if thread is not None else None
        self.lanes.abandon(index)
        if call is not None:
            call.cancel()  # reaches the coroutine once the loop runs again

    def enforce_timeout(self, pid: int, channel: Channel, ack_id: str) -> None:
        """Tell the lane to let go of the task (its coroutine is cancelled in the worker)."""
        with contextlib.suppress(OSError):  # the lane left already: its end settles the task
            channel.send(("timeout", ack_id))

    def startup_note(self) -> str | None:
        """Say how the per-worker options apply to an event loop."""
        return (
            f"process manager asyncio: {self.config.workers} worker processes x {self.concurrency} tasks "
            "on one event loop each; recycle, max_rss and cpu_affinity apply per worker process; "
            "a timed-out coroutine is cancelled, and its process replaced if it has not returned "
            f"after {self.config.grace:g} s of grace"
        )
