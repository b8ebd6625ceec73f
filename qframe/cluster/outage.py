"""How long the broker has been away, for ``max_outage``."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("qframe")

#: ``qframe cluster``'s exit code (and the sentinel's) after an outage longer than ``max_outage``.
EXIT_OUTAGE = 3


class OutageClock:
    """Times the current broker outage and trips once it lasts longer than ``limit`` seconds.

    The sentinel reports each call to the broker (:meth:`failed`, :meth:`answered`) and
    asks :meth:`check` once per guard cycle. A ``limit`` of None never trips.
    """

    def __init__(self, name: str, limit: float | None) -> None:
        self.name = name
        self.limit = limit
        #: When the current outage began (monotonic clock); None while the broker answers.
        self.since: float | None = None
        #: Set, for good, once an outage lasted longer than the limit.
        self.tripped = False

    def failed(self) -> None:
        """A call to the broker failed: the outage begins, or goes on."""
        if self.since is None:
            self.since = time.monotonic()

    def answered(self) -> None:
        """The broker answered: no outage."""
        self.since = None

    def check(self) -> bool:
        """Whether an outage lasted longer than the limit; logged once, and true from then on."""
        if self.tripped or self.limit is None or self.since is None:
            return self.tripped
        lasted = time.monotonic() - self.since
        if lasted > self.limit:
            self.tripped = True
            log.error(
                "%s: the broker has been unreachable for %.1f s, longer than max_outage (%g s); "
                "stopping the cluster (exit code %d)",
                self.name,
                lasted,
                self.limit,
                EXIT_OUTAGE,
            )
        return self.tripped
