"""The fault-injection scenarios of ``qframe.testing.FaultContract``, Mongo-wire-compatible (SecantusDB).

Real ``qframe cluster`` processes on the broker and store; the scenarios that kill the
server run on a private SecantusDB that is SIGKILLed and restarted on the same data directory.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from qframe.testing import FaultContract, FaultTarget
from qframe.testing.lab import TargetFactory


class TestMongoWireCompatibleSecantusDBFaults(FaultContract):
    """FaultContract, Mongo-wire-compatible (SecantusDB)."""

    @pytest.fixture
    def fault_target(self, mongo_url: str, own_mongo_server: Any, prefix: str) -> TargetFactory:
        """The session's server under a fresh prefix, or a private one for scenarios that kill it."""

        def make(own_server: bool) -> FaultTarget:
            server = own_mongo_server() if own_server else None
            options = json.dumps({"prefix": prefix})
            env = {
                "QFRAME_BROKER": "mongo",
                "QFRAME_BROKER_URL": server.url if server else mongo_url,
                "QFRAME_BROKER_OPTIONS": options,
                "QFRAME_STORE_OPTIONS": options,
            }
            return FaultTarget(env, server)

        return make
