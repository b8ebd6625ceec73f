"""The part of :class:`~qframe.testing.BrokerContract` about entries ``enqueue`` never writes.

A bug, a hand edit or another client can leave an entry in a broker's storage that is
not a message qframe wrote: a Redis list entry without an id, an SQLite payload stored
as TEXT. The driver provides ``write_malformed``, which writes such entries in its own
storage format; the suite runs the pusher's real :class:`~qframe.cluster.fetcher.Fetcher`
on the queue and checks that each entry ends as a dead letter whose reason names what is
wrong, that the good messages fetched beside them are delivered at once (long before
their lease would return them), and that nothing stays queued or leased.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from qframe.brokers.base import Broker
from qframe.cluster.deadletters import list_dead_letters
from qframe.cluster.deliveries import Deliveries
from qframe.cluster.fetcher import Fetcher
from qframe.config import Config
from qframe.drivers import make_store
from qframe.serialize import Codec

#: ``write(queue) -> fragments``: writes malformed entries due now into ``queue`` and returns,
#: for each entry, a fragment (case-insensitive) its dead letter's reason must contain.
MalformedWriter = Callable[[str], list[str]]


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` every 20 ms until it holds or ``timeout`` s passed; return its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def match_reasons(fragments: list[str], reasons: list[str]) -> list[str]:
    """The fragments no distinct reason contains (each reason answers for one fragment)."""
    left = [reason.lower() for reason in reasons]
    missing = []
    for fragment in fragments:
        found = next((reason for reason in left if fragment.lower() in reason), None)
        if found is None:
            missing.append(fragment)
        else:
            left.remove(found)
    return missing


class MalformedEntriesContract:
    """Malformed entries in the broker's storage are dead-lettered; their batch is delivered at once."""

    @pytest.fixture
    def write_malformed(self) -> MalformedWriter:
        """Return ``write(queue) -> list[str]``, writing malformed entries in the driver's storage format."""
        raise NotImplementedError("a BrokerContract subclass provides write_malformed")

    @pytest.fixture
    def core_store(self, tmp_path: Path) -> tuple[str, str]:
        """The store (driver name, URL) where the core keeps dead letters of a broker without its own.

        Only used when the broker declares ``has_dead_letters = False``; the embedded SQLite
        store by default.
        """
        return "sqlite", f"sqlite:///{tmp_path}/core-dead-letters.db"

    def test_malformed_entries_are_dead_letters_and_their_batch_is_delivered_at_once(
        self,
        broker: Broker,
        broker_factory: Callable[[str, float], Broker],
        write_malformed: MalformedWriter,
        core_store: tuple[str, str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        store, store_url = core_store
        config = Config(
            name=broker.queue, workers=8, lease=broker.lease, secret_key=uuid.uuid4().hex,
            store=store, store_url=store_url,
        )  # fmt: skip
        codec = Codec([str(config.secret_key)], config.name)
        good = [codec.encode({"good": i}) for i in range(3)]
        broker.enqueue_many(good[:2])
        fragments = write_malformed(broker.queue)
        broker.enqueue(good[2])
        stores = functools.partial(make_store, config)
        deliveries = Deliveries(config)
        fetcher = Fetcher(
            "contract",
            config,
            deliveries,
            codec,
            lambda: broker_factory(broker.queue, broker.lease),
            lambda: None,
        )
        caplog.set_level(logging.INFO, logger="qframe")
        logging.getLogger("qframe").addHandler(caplog.handler)  # the qframe logger may not propagate
        fetcher.start()
        try:
            # A third of the lease: a wedged batch would only come back when its lease runs out.
            arrived = wait_for(lambda: len(deliveries.waiting) >= len(good), broker.lease / 3)
            wait_for(lambda: len(list_dead_letters(broker, stores)) >= len(fragments), 5.0)
        finally:
            with deliveries.space:
                deliveries.stopping = True
                deliveries.space.notify_all()
            fetcher.join(10)
            logging.getLogger("qframe").removeHandler(caplog.handler)
        delivered = [d.message.payload for d in deliveries.waiting]
        assert arrived, f"only {len(delivered)} of {len(good)} good messages were delivered"
        assert sorted(delivered) == sorted(good)
        reasons = [letter.reason for letter in list_dead_letters(broker, stores)]
        assert len(reasons) == len(fragments), f"dead letters: {reasons}"
        assert match_reasons(fragments, reasons) == [], f"dead letters: {reasons}"
        assert "cannot reach the broker" not in caplog.text
        broker.ack_many([d.message.ack_id for d in deliveries.waiting])
        settle = 0.0 if type(broker).exact_sizes else 60.0
        assert wait_for(lambda: (broker.queue_size(), broker.lock_size()) == (0, 0), settle), (
            f"left in the queue: {broker.queue_size()} waiting, {broker.lock_size()} leased"
        )
