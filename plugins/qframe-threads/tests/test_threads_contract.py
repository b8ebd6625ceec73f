"""The threads process manager passes the ProcessManagerContract under every start method."""

from __future__ import annotations

import pytest

from qframe.config import Config
from qframe.processes import ProcessManager
from qframe.testing import ProcessManagerContract
from qframe_threads import ThreadsManager


class TestThreads(ProcessManagerContract):
    @pytest.fixture(params=["fork", "forkserver", "spawn"])
    def manager(self, request: pytest.FixtureRequest) -> ProcessManager:
        return ThreadsManager(Config(start_method=request.param))
