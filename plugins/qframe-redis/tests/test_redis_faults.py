"""The Redis broker and store pass the fault-injection scenarios (``qframe.testing.FaultContract``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qframe.testing import FaultContract, FaultTarget
from qframe.testing.lab import TargetFactory


class TestRedisFaults(FaultContract):
    @pytest.fixture
    def fault_target(self, redis_server: Any, own_redis_server: Any, key_prefix: str) -> TargetFactory:
        """The session's server under a fresh key prefix, or a private one for scenarios that kill it."""

        def make(own_server: bool) -> FaultTarget:
            server = own_redis_server() if own_server else redis_server
            options = json.dumps({"prefix": key_prefix})
            env = {
                "QFRAME_BROKER": "redis",
                "QFRAME_BROKER_URL": server.url,
                "QFRAME_BROKER_OPTIONS": options,
                "QFRAME_STORE_OPTIONS": options,
            }
            return FaultTarget(env, server)

        return make
