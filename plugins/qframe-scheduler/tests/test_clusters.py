"""The exactly-once promise with real cluster processes on one SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from multicluster import three_clusters_one_slot_each


@pytest.mark.timeout(180)
def test_three_clusters_on_one_sqlite_file_run_every_slot_once_even_when_one_is_killed(
    tmp_path: Path,
) -> None:
    three_clusters_one_slot_each({"QFRAME_BROKER_URL": f"sqlite:///{tmp_path}/q.db"})
