"""Dead letters: the one place that decides where a message moved aside goes and is listed.

A broker with ``has_dead_letters`` keeps them itself (``Broker.quarantine`` and
``Broker.dead_letters``). For any other broker the core keeps its own quarantine in the
store (the :class:`~qframe.stores.base.DeadLetterStore` role): the message is saved there
first, then acknowledged on the broker, so a failure in between leaves it on the broker;
it comes back after its lease and is quarantined again (idempotently, by message id).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence

from qframe.brokers.base import Broker, Message
from qframe.errors import StoreError
from qframe.stores.base import DeadLetter, DeadLetterStore, Store

#: A store, or a callable that opens one on demand (closed again after use).
StoreSource = Store | Callable[[], Store]


def quarantine(
    broker: Broker,
    store: StoreSource,
    message: Message,
    reason: str,
    attempts: int | None = None,
    last_error: str = "",
) -> DeadLetter:
    """Move ``message`` aside with ``reason``: on the broker if it keeps dead letters, else in the store.

    ``attempts`` defaults to the delivery's count. Returns the letter as kept (``dead_at``
    as seen here), for the ``qframe_task_dead_lettered`` hook.
    """
    attempts = message.attempts if attempts is None else attempts
    letter = DeadLetter(message.message_id, reason, message.payload, attempts, last_error, time.time())
    if broker.has_dead_letters:
        broker.quarantine(message.ack_id, reason, attempts, last_error)
        return letter
    with _dead_letter_store(store) as target:
        target.quarantine(broker.queue, message.message_id, reason, message.payload, attempts, last_error)
    broker.ack(message.ack_id)
    return letter


def list_dead_letters(broker: Broker, store: StoreSource) -> list[DeadLetter]:
    """The dead letters of ``broker``'s queue, wherever they are kept."""
    if broker.has_dead_letters:
        return broker.dead_letters()
    with _dead_letter_store(store) as target:
        return target.dead_letters(broker.queue)


def remove_dead_letters(broker: Broker, store: StoreSource, message_ids: Sequence[str]) -> int:
    """Forget these dead letters of ``broker``'s queue, wherever they are kept; return how many existed."""
    if not message_ids:
        return 0
    if broker.has_dead_letters:
        return broker.remove_dead_letters(message_ids)
    with _dead_letter_store(store) as target:
        return target.remove_dead_letters(broker.queue, message_ids)


@contextlib.contextmanager
def _dead_letter_store(store: StoreSource) -> Iterator[DeadLetterStore]:
    target = store if isinstance(store, Store) else store()
    try:
        if not isinstance(target, DeadLetterStore):
            raise StoreError(f"store {type(target).__name__} keeps no dead letters")
        yield target
    finally:
        if target is not store:
            target.close()
