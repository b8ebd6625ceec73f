"""End-to-end: an entry ``enqueue`` never wrote, among good tasks in a real SQLite cluster."""

from __future__ import annotations

import sqlite3
import time

import pytest
from conftest import Lab

from qframe.builtin.sqlite import SQLiteBroker, SQLiteStore
from qframe.cluster.deadletters import list_dead_letters
from qframe.testing import wait_until

pytestmark = pytest.mark.timeout(120)
TASKS = "qframe.testing.tasks"


def test_a_malformed_entry_is_a_dead_letter_and_the_good_tasks_beside_it_run_at_once(lab: Lab) -> None:
    lab.configure(lease=30)
    url = lab.env["QFRAME_BROKER_URL"]
    first = lab.client.async_tasks(f"{TASKS}.inc", [(i,) for i in range(3)], group="beside")
    conn = sqlite3.connect(lab.tmp / "qframe.db", isolation_level=None)
    try:  # a payload stored as TEXT (and not even UTF-8): enqueue always writes a BLOB
        conn.execute(
            "INSERT INTO qframe_queue (queue, payload, visible) VALUES ('default', CAST(? AS TEXT), ?)",
            (b"\xff\xfe by hand", time.time()),
        )
    finally:
        conn.close()
    rest = lab.client.async_tasks(f"{TASKS}.inc", [(i,) for i in range(3, 10)], group="beside")
    cluster = lab.cluster()

    # Within a third of the lease: a wedged batch would come back only when its lease ran out.
    wait_until(lambda: lab.client.count_group("beside") == 10, timeout=10)
    assert [lab.client.result(task_id) for task_id in first + rest] == list(range(1, 11))
    broker, store = SQLiteBroker(url, "default"), SQLiteStore(url)
    try:
        [(_, reason, payload, *_)] = list_dead_letters(broker, store)
        assert reason == "malformed entry: payload stored as text, not as a blob"
        assert payload == b"\xff\xfe by hand"
        assert (broker.queue_size(), broker.lock_size()) == (0, 0)
    finally:
        broker.close()
        store.close()
    assert cluster.stop() == 0
    assert "cannot reach the broker" not in cluster.log
    assert len(lab.runs("inc")) == 10
