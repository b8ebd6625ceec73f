"""Dead letters as the core expects them: the agreed ``DeadLetter`` record, or the older 3-tuple.

The core on this branch lists dead letters as ``(message_id, reason, payload)``; the
agreed interface (``qframe.stores.base.DeadLetter``) adds attempts, last error and when.
:func:`as_core` gives whichever the installed core defines.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class DeadLetterRecord(NamedTuple):
    """A message moved aside, with why (same fields as the agreed ``qframe.stores.base.DeadLetter``)."""

    message_id: str
    reason: str
    payload: bytes
    attempts: int = 0
    last_error: str = ""
    dead_at: float = 0.0


def as_core(record: DeadLetterRecord) -> Any:
    """``record`` as the core's ``DeadLetter`` when it has one, else as a 3-tuple."""
    try:
        from qframe.stores.base import DeadLetter  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return (record.message_id, record.reason, record.payload)
    return DeadLetter(*record)


def from_row(row: Any) -> DeadLetterRecord:
    """The record of a :class:`qframe_django.models.DeadLetter` row."""
    return DeadLetterRecord(
        row.message_id, row.reason, bytes(row.payload), row.attempts, row.last_error, row.dead_at
    )
