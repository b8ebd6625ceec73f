"""Test kit for plugin authors: conformance suites and server helpers.

Subclass :class:`BrokerContract`, :class:`StoreContract` or :class:`DelayStoreContract`
in a driver's tests and provide the fixtures they name; see ``docs/plugins.md``.
"""

from qframe.testing.contracts import (
    BrokerContract,
    DelayStoreContract,
    StoreContract,
    make_meta,
    short_time,
    wait_until,
)
from qframe.testing.servers import free_port, require_binary

__all__ = [
    "BrokerContract",
    "DelayStoreContract",
    "StoreContract",
    "free_port",
    "make_meta",
    "require_binary",
    "short_time",
    "wait_until",
]
