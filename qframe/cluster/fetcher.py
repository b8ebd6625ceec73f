"""The fetcher: a thread of the pusher that takes messages from the broker and checks them.

A blocking fetch never delays the results coming back from workers, because it runs
beside the pusher's main loop. A payload whose signature fails is quarantined here and
never reaches a worker.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

from qframe.brokers.base import Broker, Message
from qframe.cluster.deadletters import quarantine
from qframe.cluster.deliveries import Deliveries, Delivery
from qframe.config import Config
from qframe.drivers import make_store
from qframe.errors import BrokerError, SignatureError, StoreError
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
    ) -> None:
        self.name = name
        self.config = config
        self.deliveries = deliveries
        self.codec = codec
        self.make_broker = make_broker
        self.arrived = arrived
        self.thread = threading.Thread(target=self.run, name="fetcher", daemon=True)

    def start(self) -> None:
        """Start fetching."""
        self.thread.start()

    def run(self) -> None:
        """Fetch while there is room; log an outage once and retry with a backoff."""
        broker = self.make_broker()
        pause = 0.1
        outage = False
        while room := self.deliveries.room(self.config.bulk):
            try:
                messages = broker.dequeue(room, wait=0.5)
                checked = [d for d in (self.check(broker, m) for m in messages) if d is not None]
            except Exception as exc:  # an outage, or a driver bug: never let the fetcher die
                if not outage:
                    log.warning("%s cannot reach the broker, retrying: %s", self.name, exc)
                outage = True
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            if outage:
                log.info("%s reached the broker again", self.name)
                outage, pause = False, 0.1
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

    def check(self, broker: Broker, message: Message) -> Delivery | None:
        """Verify a message's signature; quarantine it if it fails."""
        try:
            return Delivery(message, self.codec.verify(message.payload))
        except SignatureError as exc:
            log.error(
                "rejected message %s from queue '%s': %s; moved to dead letters",
                message.message_id,
                self.config.name,
                exc,
            )
            try:
                quarantine(broker, functools.partial(make_store, self.config), message, str(exc))
            except (BrokerError, StoreError) as error:
                log.error(
                    "could not move message %s aside (it comes back after its lease): %s",
                    message.message_id,
                    error,
                )
            return None

    def join(self, timeout: float) -> None:
        """Wait for the thread to finish after a stop."""
        if self.thread.is_alive():
            self.thread.join(timeout)
