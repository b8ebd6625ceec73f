"""How a dead letter's fields are kept in Redis: one JSON value per message id beside its payload.

Both the broker's dead letters (``qframe:{queue}:dead``) and the store's
(``{prefix}:{results}:dead:<queue>``) map a message id to this value; the payload lives
in a second hash under the same id. A value written by an older qframe-redis is the bare
reason text, read back with no attempts, last error or time.
"""

from __future__ import annotations

import json
import time

from qframe.stores.base import DeadLetter


def letter_fields(reason: str, attempts: int, last_error: str) -> str:
    """The value kept for a dead letter moved aside now."""
    return json.dumps(
        {"reason": reason, "attempts": attempts, "last_error": last_error, "dead_at": time.time()},
        separators=(",", ":"),
    )


def read_letter(message_id: bytes | str, value: bytes | str, payload: bytes) -> DeadLetter:
    """The dead letter kept as ``value`` (or a bare reason) with ``payload``."""
    text = value.decode() if isinstance(value, bytes) else value
    name = message_id.decode() if isinstance(message_id, bytes) else message_id
    try:
        fields = json.loads(text)
    except ValueError:
        fields = None
    if not isinstance(fields, dict) or "reason" not in fields:
        return DeadLetter(name, text, bytes(payload))
    return DeadLetter(
        name,
        str(fields["reason"]),
        bytes(payload),
        int(fields.get("attempts", 0)),
        str(fields.get("last_error", "")),
        float(fields.get("dead_at", 0.0)),
    )
