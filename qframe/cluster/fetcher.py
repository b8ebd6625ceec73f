"""The fetcher: a thread of the pusher that takes messages from the broker and checks them.

A blocking fetch never delays the results coming back from workers, because it runs
beside the pusher's main loop. A malformed entry or a payload whose signature fails is
quarantined here (:mod:`qframe.cluster.screening`) and never reaches a worker.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

from qframe.brokers.base import Broker, Message
from qframe.cluster.deliveries import Deliveries, Delivery
from qframe.cluster.screening import screen
from qframe.config import Config
from qframe.drivers import make_store
from qframe.errors import BrokerError
from qframe.hooks import Hooks
from qframe.serialize import Codec

log = logging.getLogger("qframe")


def release(broker: Broker, deliveries: list[Delivery]) -> None:
    """Hand back deliveries that never started, without spending an attempt."""
    if not deliveries:
        return
    try:
        broker.release([d.message.ack_id for d in deliveries])
    except Exception as exc:
        log.warning("could not hand back %d tasks (their leases will return them): %s", len(deliveries), exc)


class Fetcher:
    """Keeps the pusher's :class:`Deliveries` filled from the broker, on its own thread."""

    def __init__(
        self,
        name: str,
        config: Config,
        deliveries: Deliveries,
        codec: Codec,
        make_broker: Callable[[], Broker],
        arrived: Callable[[], None],
        hooks: Hooks | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.deliveries = deliveries
        self.codec = codec
        self.make_broker = make_broker
        self.arrived = arrived
        #: Told of each message moved to the dead letters (``qframe_task_dead_lettered``).
        self.hooks = hooks
        #: Where the core keeps dead letters when the broker keeps none (opened only then).
        self.stores = functools.partial(make_store, config)
        self.thread = threading.Thread(target=self.run, name="fetcher", daemon=True)

    def start(self) -> None:
        """Start fetching."""
        self.thread.start()

    def run(self) -> None:
        """Fetch while there is room; log a failure once and retry with a backoff.

        Only :class:`BrokerError` is an outage; anything else ``dequeue`` raises is a bug of
        the driver and is logged as one. Malformed entries are not failures: the driver
        returns them marked, and :func:`screen` moves them to the dead letters.
        """
        broker = self.make_broker()
        pause = 0.1
        failing: Exception | None = None
        while room := self.deliveries.room(self.config.bulk):
            try:
                messages = broker.dequeue(room, wait=0.5)
            except Exception as exc:  # never let the fetcher die
                if failing is None:
                    self.log_failure(broker, exc)
                failing = exc
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            if failing is not None:
                if isinstance(failing, BrokerError):
                    log.info("%s reached the broker again", self.name)
                failing, pause = None, 0.1
            checked = [d for d in (self.check(broker, m) for m in messages) if d is not None]
            with self.deliveries.space:
                stopping = self.deliveries.stopping
                if not stopping:
                    self.deliveries.waiting.extend(checked)
            if stopping:
                release(broker, checked)
                break
            if checked:
                self.arrived()
        broker.close()

    def log_failure(self, broker: Broker, exc: Exception) -> None:
        """Log the first failure of ``dequeue`` in a row: an outage, or a driver's bug."""
        if isinstance(exc, BrokerError):
            log.warning("%s cannot reach the broker, retrying: %s", self.name, exc)
        else:
            log.error(
                "%s: %s.dequeue failed (a bug in the broker driver, not an outage), retrying: %s: %s",
                self.name,
                type(broker).__name__,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )

    def check(self, broker: Broker, message: Message) -> Delivery | None:
        """Screen a message: a delivery to hand out, or None once it is in the dead letters."""
        return screen(broker, self.stores, self.codec, message, self.hooks)

    def join(self, timeout: float) -> None:
        """Wait for the thread to finish after a stop."""
        if self.thread.is_alive():
            self.thread.join(timeout)
