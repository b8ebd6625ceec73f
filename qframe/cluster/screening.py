"""Screening: what the pusher does with each fetched message before any worker sees it.

A message the broker marks malformed (:attr:`~qframe.brokers.base.Message.malformed`), one
whose payload is not ``bytes``, and one whose signature fails are moved to the dead letters
(the broker's own, or the core's in the store) with a reason naming what is wrong; every
other message becomes a :class:`Delivery`. Screening never raises, so one bad entry never
holds up the messages fetched beside it.
"""

from __future__ import annotations

import dataclasses
import logging

from qframe.brokers.base import Broker, Message
from qframe.cluster.deadletters import StoreSource, quarantine
from qframe.cluster.deliveries import Delivery
from qframe.errors import SignatureError
from qframe.hooks import Hooks
from qframe.serialize import Codec
from qframe.stores.base import DeadLetter

log = logging.getLogger("qframe")


def screen(
    broker: Broker, store: StoreSource, codec: Codec, message: Message, hooks: Hooks | None = None
) -> Delivery | None:
    """The message as a delivery to hand out, or None once it was moved to the dead letters.

    ``hooks`` get ``qframe_task_dead_lettered`` for a message moved aside.
    """
    if message.malformed:
        reason = f"malformed entry: {message.malformed}"
    elif not isinstance(message.payload, bytes):
        reason = f"malformed entry: the broker returned a {type(message.payload).__name__} payload, not bytes"
    else:
        try:
            return Delivery(message, codec.verify(message.payload))
        except SignatureError as exc:
            reason = str(exc)
        except Exception as exc:  # a payload verify cannot even read is malformed too
            reason = f"malformed entry: {type(exc).__name__}: {exc}"
    log.error(
        "rejected message %s from queue '%s': %s; moved to dead letters",
        message.message_id,
        broker.queue,
        reason,
    )
    letter = set_aside(broker, store, message, reason)
    if letter is not None and hooks is not None:
        hooks.task_dead_lettered(broker.queue, letter)
    return None


def set_aside(broker: Broker, store: StoreSource, message: Message, reason: str) -> DeadLetter | None:
    """Quarantine ``message`` and return its letter; if that fails, log it and return None.

    Its lease then brings the message back for another try.
    """
    if not isinstance(message.payload, bytes):
        message = dataclasses.replace(message, payload=as_bytes(message.payload))
    try:
        return quarantine(broker, store, message, reason)
    except Exception as exc:  # an outage or a driver bug: neither may stop the fetcher
        log.error(
            "could not move message %s aside (it comes back after its lease): %s", message.message_id, exc
        )
        return None


def as_bytes(payload: object) -> bytes:
    """A payload of the wrong type as the bytes a dead letter keeps (text as UTF-8, nothing as empty)."""
    if payload is None:
        return b""
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload)
    return repr(payload).encode()
