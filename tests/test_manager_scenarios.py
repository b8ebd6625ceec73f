"""The default prefork manager passes the process-manager cluster scenarios (``async def`` tasks included)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from qframe.testing.manager_scenarios import ProcessManagerScenarios


class TestPreforkScenarios(ProcessManagerScenarios):
    @pytest.fixture
    def manager_env(self) -> Mapping[str, str]:
        return {"QFRAME_PROCESS_MANAGER": "prefork"}
