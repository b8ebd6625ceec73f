"""Dead-letter rows as the core's :class:`~qframe.stores.base.DeadLetter` records."""

from __future__ import annotations

from typing import Any

from qframe.stores.base import DeadLetter


def from_row(row: Any) -> DeadLetter:
    """The record of a :class:`qframe_django.models.DeadLetter` row."""
    return DeadLetter(
        row.message_id, row.reason, bytes(row.payload), row.attempts, row.last_error, row.dead_at
    )
