"""The Scheduler ABC (ticked by the sentinel) and the ScheduleStore role it keeps its state in.

A scheduler enqueues tasks when they are due. Every cluster of a queue runs one, so several
schedulers on several hosts see the same schedule due at the same moment; the
:class:`ScheduleStore` decides which of them enqueues it: :meth:`ScheduleStore.claim_slot`
returns True for exactly one caller per ``(schedule, slot)``. The result store fills the
role by default (the SQLite and Redis stores do); :func:`schedule_store` builds it.
"""

from __future__ import annotations

import abc
import os
import socket
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from qframe.errors import ConfigError, QFrameError

if TYPE_CHECKING:
    from qframe.client import Client
    from qframe.config import Config

#: The ``scheduler`` option's default: the driver qframe-scheduler installs, if it is installed.
DEFAULT_SCHEDULER = "default"

#: Seconds a claim is kept by default: one day.
DEFAULT_KEEP = 86400.0


class ScheduleStore(abc.ABC):
    """A store role: schedules kept as opaque blobs by id, and an atomic claim per due slot.

    A *slot* is an integer naming one due run of one schedule, for example the Unix time of
    the run in whole seconds. The claim must be atomic across threads, processes and hosts
    sharing the store (a unique ``(schedule, slot)`` marker written with insert-if-absent).
    ``qframe.testing.ScheduleStoreContract`` checks it. One instance is used by one thread.
    """

    @abc.abstractmethod
    def claim_slot(self, schedule_id: str, slot: int, owner: str, keep: float = DEFAULT_KEEP) -> bool:
        """Claim run ``slot`` of ``schedule_id`` for ``owner``; True for exactly one caller.

        Every later claim of the same slot returns False, whoever makes it (``owner``
        included), for at least ``keep`` seconds; after that the store may forget the
        claim, so a scheduler never claims a slot older than the ``keep`` it claims with.
        """

    @abc.abstractmethod
    def slot_owner(self, schedule_id: str, slot: int) -> str | None:
        """The ``owner`` whose claim of ``slot`` won, while the claim is kept; else None."""

    @abc.abstractmethod
    def save_schedule(self, schedule_id: str, data: bytes) -> None:
        """Save (or replace) the schedule ``schedule_id``; ``data`` is the scheduler's own format."""

    @abc.abstractmethod
    def schedules(self) -> dict[str, bytes]:
        """Every saved schedule, by id."""

    @abc.abstractmethod
    def delete_schedule(self, schedule_id: str) -> bool:
        """Delete a schedule; return whether it existed. Its claims stay until they expire."""

    def close(self) -> None:  # noqa: B027 - a result store filling the role brings its own
        """Release connections; the instance is not used afterwards."""


class Scheduler(abc.ABC):
    """A scheduler driver (entry point group ``qframe.schedulers``), built from the Config.

    The sentinel of every cluster builds one when ``scheduler`` names it and calls
    :meth:`tick` at start-up and then every ``guard_cycle`` seconds. A tick blocks the
    sentinel (which also replaces dead workers), so it must be **bounded**: it handles at
    most :attr:`max_per_tick` due runs, each costing one claim and one enqueue, and leaves
    the rest for the next tick. It never sleeps or waits for a task to finish.
    """

    #: Most due runs one tick handles (and tasks it enqueues); the rest wait for the next tick.
    max_per_tick: int = 100

    def __init__(self, config: Config) -> None:
        self.config = config
        #: Names this instance in its claims (host, pid and a random part).
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @abc.abstractmethod
    def tick(self, now: float, client: Client) -> int:
        """Enqueue, through ``client``, what is due at ``now`` (Unix time); return how many.

        At most :attr:`max_per_tick` runs per call. An exception is logged by the sentinel
        in one line and the next tick runs as usual.
        """

    def close(self) -> None:  # noqa: B027 - optional for schedulers without connections
        """Release connections; the instance is not used afterwards."""


def scheduler_choice(config: Config) -> str:
    """The scheduler the sentinel runs: ``config.scheduler``; "" (none) for the default when not installed."""
    from qframe.drivers import available

    if config.scheduler == DEFAULT_SCHEDULER and DEFAULT_SCHEDULER not in available("scheduler"):
        return ""
    return config.scheduler


def schedule_store(config: Config) -> ScheduleStore:
    """The schedule store for ``config``: its result store, which must fill the role."""
    from qframe.drivers import available, load, make_store, store_choice

    store = make_store(config)
    if isinstance(store, ScheduleStore):
        return store
    store.close()
    able = [name for name in available("store") if _keeps_schedules(load, name)]
    raise ConfigError(
        f"store '{store_choice(config)[0]}' cannot keep schedules (it is no ScheduleStore); "
        f"set store to one that can: {', '.join(able) or 'none installed'}"
    )


def _keeps_schedules(load: Callable[[str, str], object], name: str) -> bool:
    try:
        cls = load("store", name)
    except QFrameError:
        return False
    return isinstance(cls, type) and issubclass(cls, ScheduleStore)
