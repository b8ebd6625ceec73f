"""The ``wait`` argument of the result calls: seconds, 0 to look once, -1 to wait without limit.

Stores take finite timeouts only, so a long or endless wait is handed to them in slices.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

from qframe.errors import InvalidArgument

#: ``wait=FOREVER`` waits without limit, as ``wait=-1`` does in Django Q2.
FOREVER = -1
#: The longest single wait handed to a store.
SLICE = 60.0


def wait_limit(wait: float) -> float:
    """``wait`` as a number of seconds (``math.inf`` for -1); any other negative is refused."""
    if wait == FOREVER:
        return math.inf
    if not wait >= 0:  # also refuses NaN
        raise InvalidArgument(f"wait must be 0 or more seconds, or -1 to wait without limit; got {wait!r}")
    return float(wait)


def slices(limit: float, most: float = SLICE) -> Iterator[float]:
    """Timeouts, each up to ``most``, for store calls that together last ``limit`` seconds (none for 0)."""
    deadline = time.monotonic() + limit
    while (left := deadline - time.monotonic()) > 0:
        yield min(left, most)
