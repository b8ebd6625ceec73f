"""The embedded SQLite broker passes the fault-injection scenarios (``qframe.testing.FaultContract``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qframe.testing import FaultContract, FaultTarget
from qframe.testing.lab import TargetFactory


class TestSQLiteFaults(FaultContract):
    @pytest.fixture
    def fault_target(self, tmp_path: Path) -> TargetFactory:
        """One database file per test; SQLite has no server to kill (those scenarios skip)."""
        return lambda own_server: FaultTarget({"QFRAME_BROKER_URL": f"sqlite:///{tmp_path}/qframe.db"})
