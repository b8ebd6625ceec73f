"""Lanes as threads of one worker process, for process managers that run several tasks at once.

A process manager whose worker processes run ``count`` tasks at once (``threads``,
``asyncio``) calls :meth:`ThreadLanes.run` from its ``run_lanes`` and
:meth:`ThreadLanes.abandon` from its ``lane_timed_out``. A thread cannot be killed, so a
lane whose task timed out is abandoned: a new lane takes its place at once, and if the
abandoned thread has not returned ``grace`` seconds later the whole process exits with
:data:`EXIT_STUCK` (the sentinel replaces it; the tasks its other lanes ran go back to the
broker like those of any worker that died).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("qframe")

#: The exit code of a worker process that ended because a timed-out task never returned.
EXIT_STUCK = 70


def exit_stuck() -> None:
    """End this process at once (a stuck thread would keep an orderly exit waiting forever)."""
    logging.shutdown()
    os._exit(EXIT_STUCK)


class ThreadLanes:
    """Runs ``count`` lanes as daemon threads; replaces abandoned ones; ends the process if one is stuck."""

    def __init__(self, count: int, grace: float, on_stuck: Callable[[], None] = exit_stuck) -> None:
        self.count = count
        self.grace = grace
        self.on_stuck = on_stuck
        self._changed = threading.Condition()
        self._threads: dict[int, threading.Thread] = {}
        self._live: set[threading.Thread] = set()
        self._lane: Callable[[int], None] = lambda index: None

    def run(self, lane: Callable[[int], None]) -> None:
        """Run ``lane(0)`` .. ``lane(count - 1)``, each in a thread; return once every lane returned."""
        self._lane = lane
        with self._changed:
            for index in range(self.count):
                self._start(index)
            while self._live:
                self._changed.wait()

    def thread(self, index: int) -> threading.Thread | None:
        """The thread that runs lane ``index`` now."""
        with self._changed:
            return self._threads.get(index)

    def abandon(self, index: int) -> None:
        """Lane ``index`` let go of a timed-out task: start a new lane, and watch the old thread."""
        with self._changed:
            old = self._threads[index]
            self._live.discard(old)
            self._start(index)
        threading.Thread(target=self._watch, args=(old,), name=f"watch-lane-{index}", daemon=True).start()

    def _start(self, index: int) -> None:
        """Start lane ``index`` in a new thread (call with the condition held)."""
        thread = threading.Thread(target=self._run_lane, args=(index,), name=f"lane-{index}", daemon=True)
        self._threads[index] = thread
        self._live.add(thread)
        thread.start()

    def _run_lane(self, index: int) -> None:
        try:
            self._lane(index)
        finally:
            with self._changed:
                self._live.discard(threading.current_thread())
                self._changed.notify_all()

    def _watch(self, old: threading.Thread) -> None:
        old.join(self.grace)
        if old.is_alive():
            log.critical(
                "a timed-out task in %s did not return within %g s of grace; replacing the worker "
                "process (the tasks its other lanes ran go back to the broker)",
                os.getpid(),
                self.grace,
            )
            self.on_stuck()
