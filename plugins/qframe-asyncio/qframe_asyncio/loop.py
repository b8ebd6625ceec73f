"""One event loop per worker process, run by a thread of its own; uvloop when installed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import threading
from collections.abc import Awaitable
from typing import Any


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when ``uvloop`` imports, else the standard one."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class LoopThread:
    """An event loop running forever in a daemon thread, taking coroutines from other threads."""

    def __init__(self) -> None:
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="event-loop", daemon=True)
        self._thread.start()

    def submit(self, awaitable: Awaitable[Any]) -> LoopCall:
        """Schedule ``awaitable`` on the loop; wait for it and cancel it from any thread."""
        return LoopCall(self.loop, awaitable)


class LoopCall:
    """One awaitable running on a :class:`LoopThread`'s loop.

    :meth:`cancel` cancels the coroutine on the loop; :meth:`result` keeps waiting until
    the coroutine really ended, so a coroutine that blocks the loop keeps its lane busy.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, awaitable: Awaitable[Any]) -> None:
        self.loop = loop
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False
        self._future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(
            self._run(awaitable), loop
        )

    async def _run(self, awaitable: Awaitable[Any]) -> Any:
        if self._cancelled:  # cancelled before the loop started it
            close = getattr(awaitable, "close", None)
            if close is not None:
                close()
            raise asyncio.CancelledError
        self._task = asyncio.current_task()
        return await awaitable

    def result(self) -> Any:
        """Wait for the coroutine's result (CancelledError once a cancellation took effect)."""
        return self._future.result()

    def cancel(self) -> None:
        """Cancel the coroutine as soon as the loop runs again (safe from any thread)."""
        self.loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()
