"""End-to-end: a short task queued behind a long one on a busy worker moves to an idle one."""

from __future__ import annotations

import collections

import pytest
from conftest import Lab

pytestmark = pytest.mark.timeout(120)
TASKS = "qframe.testing.tasks"


def test_short_tasks_do_not_wait_behind_a_long_task_on_the_same_worker(lab: Lab) -> None:
    lab.configure(workers=2)
    long_id = lab.client.async_task(f"{TASKS}.sleepy", "long", 5.0)
    short_ids = lab.client.async_tasks(f"{TASKS}.sleepy", [(f"short-{i}", 0.1) for i in range(10)])
    cluster = lab.cluster()  # everything is queued before it starts: its first batch holds them all

    long_record = lab.client.fetch(long_id, wait=60)
    short_records = [lab.client.fetch(task_id, wait=60) for task_id in short_ids]
    assert long_record is not None and long_record.success
    assert all(record is not None and record.success for record in short_records)
    finished = max(record.stopped for record in short_records if record is not None)
    # Ten 0.1 s tasks on the one free worker take a second; behind the long one, over five.
    # The margin is for a loaded machine: anything under the long task's 5 s was moved.
    assert finished - long_record.started < 3.5, (
        f"the last short task ended {finished - long_record.started:.2f} s in"
    )
    assert cluster.stop() == 0
    runs = collections.Counter(row[1] for row in lab.runs("sleepy"))
    assert runs == {"long": 1, **{f"short-{i}": 1 for i in range(10)}}  # moved, never run twice
