"""Runs the configured scheduler from the sentinel, so that a failing scheduler never stops it."""

from __future__ import annotations

import logging
import time

import pluggy

from qframe.client import Client
from qframe.config import Config
from qframe.drivers import load
from qframe.schedulers.base import Scheduler, scheduler_choice

log = logging.getLogger("qframe")


class SchedulerTicker:
    """The sentinel's handle on its scheduler: built lazily, ticked, errors logged in one line.

    The driver class is loaded at once, so a wrong ``scheduler`` name stops the cluster's
    start with a :class:`~qframe.errors.DriverNotFound`; the scheduler instance and its
    :class:`~qframe.client.Client` are built at the first tick, after the sentinel started
    its children. With ``scheduler = ""`` every call does nothing.
    """

    def __init__(self, config: Config, pm: pluggy.PluginManager) -> None:
        self.config = config
        self.pm = pm
        self.name = scheduler_choice(config)
        self._cls: type[Scheduler] | None = load("scheduler", self.name) if self.name else None
        self._scheduler: Scheduler | None = None
        self._client: Client | None = None
        #: The last failure's line, so a lasting outage is logged once, not every cycle.
        self._failure: str | None = None

    def tick(self) -> int:
        """Run one tick of the scheduler now; return how many tasks it enqueued (0 on error)."""
        if self._cls is None:
            return 0
        started = time.monotonic()
        try:
            if self._client is None:
                self._client = Client(self.config, self.pm)
            if self._scheduler is None:
                self._scheduler = self._cls(self.config)
            count = self._scheduler.tick(time.time(), self._client)
        except Exception as exc:
            failure = " ".join(f"{type(exc).__name__}: {exc}".split())
            if failure != self._failure:
                log.error("scheduler %s failed: %s", self.name, failure)
            self._failure = failure
            return 0
        if self._failure is not None:
            log.info("scheduler %s works again", self.name)
            self._failure = None
        elapsed = time.monotonic() - started
        if elapsed > self.config.guard_cycle:
            log.warning(
                "scheduler %s took %.1f s for one tick (guard_cycle is %g s); it delays the sentinel",
                self.name,
                elapsed,
                self.config.guard_cycle,
            )
        return int(count)

    def close(self) -> None:
        """Close the scheduler and its client's connections (errors are logged, not raised)."""
        for closable in (self._scheduler, self._client):
            try:
                if closable is not None:
                    closable.close()
            except Exception as exc:
                log.warning("scheduler %s did not close cleanly: %s", self.name, exc)
        self._scheduler = self._client = None
