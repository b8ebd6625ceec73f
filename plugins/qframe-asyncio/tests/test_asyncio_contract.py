"""The asyncio process manager passes the ProcessManagerContract under every start method."""

from __future__ import annotations

import pytest

from qframe.config import Config
from qframe.processes import ProcessManager
from qframe.testing import ProcessManagerContract
from qframe_asyncio import AsyncioManager


class TestAsyncio(ProcessManagerContract):
    @pytest.fixture(params=["fork", "forkserver", "spawn"])
    def manager(self, request: pytest.FixtureRequest) -> ProcessManager:
        return AsyncioManager(Config(start_method=request.param))
