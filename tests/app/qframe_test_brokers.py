"""Broker drivers that misbehave on purpose, loaded as ``module:Class``."""

from __future__ import annotations

import os
from typing import Any

from qframe.builtin.sqlite import SQLiteBroker
from qframe.errors import BrokerError
from qframe.stores.base import Store


class WarningsFail(SQLiteBroker):
    """A broker whose configuration check cannot reach the server."""

    def warnings(self) -> list[str]:
        raise BrokerError("CONFIG is not allowed here")


class ChildrenFail(SQLiteBroker):
    """A broker that works in the main process but not in the cluster's children."""

    main_pid = os.getpid()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if os.getpid() != ChildrenFail.main_pid:
            raise BrokerError("server went away")
        super().__init__(*args, **kwargs)


class NoDeadLetters(SQLiteBroker):
    """The embedded broker as a broker without dead letters: the core keeps them in the store."""

    has_dead_letters = False


#: A store that fills the results role only (its methods do nothing): no statuses, no dead letters.
ResultsOnly = type(
    "ResultsOnly", (Store,), {name: lambda *args, **kwargs: None for name in Store.__abstractmethods__}
)
