"""The store this plugin's tests schedule on keeps the ScheduleStore promises the scheduler relies on."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from qframe.builtin.sqlite import SQLiteStore
from qframe.testing import ScheduleStoreContract
from qframe.testing.schedule_contract import ScheduleStoreFactory


class TestSQLiteScheduleStore(ScheduleStoreContract):
    @pytest.fixture
    def schedule_store_factory(self, tmp_path: Path) -> ScheduleStoreFactory:
        return functools.partial(SQLiteStore, f"sqlite:///{tmp_path}/schedules.db")
