"""Test kit for plugin authors: conformance suites and server helpers.

Subclass :class:`BrokerContract`, :class:`StoreContract`, :class:`StatusStoreContract`,
:class:`DeadLetterStoreContract`, :class:`DelayStoreContract`, :class:`ScheduleStoreContract`,
:class:`~qframe.testing.processes.ProcessManagerContract`, :class:`ProcessManagerScenarios`
or :class:`FaultContract` in a driver's tests and provide the fixtures they name; see
``docs/plugins.md``. :class:`ServerProcess` (and the ready-made :class:`RedisServer`)
start a driver's server on a loopback port and inject faults into it.
"""

from qframe.testing.contracts import (
    BrokerContract,
    DeadLetterStoreContract,
    DelayStoreContract,
    StatusStoreContract,
    StoreContract,
    make_meta,
    short_time,
    wait_until,
)
from qframe.testing.faults import FaultContract
from qframe.testing.lab import FaultLab, FaultTarget
from qframe.testing.manager_scenarios import ProcessManagerScenarios
from qframe.testing.processes import ProcessManagerContract
from qframe.testing.schedule_contract import ScheduleStoreContract
from qframe.testing.servers import RedisServer, ServerProcess, free_port, require_binary

__all__ = [
    "BrokerContract",
    "DeadLetterStoreContract",
    "DelayStoreContract",
    "FaultContract",
    "FaultLab",
    "FaultTarget",
    "ProcessManagerContract",
    "ProcessManagerScenarios",
    "RedisServer",
    "ScheduleStoreContract",
    "ServerProcess",
    "StatusStoreContract",
    "StoreContract",
    "free_port",
    "make_meta",
    "require_binary",
    "short_time",
    "wait_until",
]
