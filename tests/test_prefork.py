"""The prefork process manager passes the ProcessManagerContract under every start method."""

from __future__ import annotations

import pytest

from qframe.builtin.prefork import PreforkManager
from qframe.config import Config
from qframe.processes import ProcessManager
from qframe.testing.processes import ProcessManagerContract


class TestPrefork(ProcessManagerContract):
    @pytest.fixture(params=["fork", "forkserver", "spawn"])
    def manager(self, request: pytest.FixtureRequest) -> ProcessManager:
        return PreforkManager(Config(start_method=request.param))
