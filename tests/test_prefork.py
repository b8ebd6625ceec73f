"""The prefork process manager passes the ProcessManagerContract under every start method."""

from __future__ import annotations

import gc
from multiprocessing.connection import Connection

import pytest

from qframe.builtin.prefork import PreforkManager
from qframe.config import Config
from qframe.processes import ProcessManager
from qframe.testing.processes import ProcessManagerContract


class TestPrefork(ProcessManagerContract):
    @pytest.fixture(params=["fork", "forkserver", "spawn"])
    def manager(self, request: pytest.FixtureRequest) -> ProcessManager:
        return PreforkManager(Config(start_method=request.param))


def report_freeze_count(channel: Connection) -> None:
    """Child target: send how many objects this process has frozen."""
    channel.send(gc.get_freeze_count())


def test_fork_child_inherits_a_frozen_heap_and_the_parent_stays_unfrozen() -> None:
    manager = PreforkManager(Config(start_method="fork"))
    parent_end, child_end = manager.pipe()
    child = manager.spawn(report_freeze_count, (child_end,), "freeze-probe")
    try:
        assert parent_end.poll(30)
        assert parent_end.recv() > 1000  # qframe, pytest and the stdlib are all inherited frozen
        assert gc.get_freeze_count() == 0
    finally:
        child.join(30)  # type: ignore[attr-defined]


def test_fork_leaves_a_heap_the_application_froze_itself_frozen() -> None:
    manager = PreforkManager(Config(start_method="fork"))
    parent_end, child_end = manager.pipe()
    gc.freeze()
    try:
        child = manager.spawn(report_freeze_count, (child_end,), "freeze-probe")
        assert parent_end.poll(30)
        parent_end.recv()
        assert gc.get_freeze_count() > 1000  # not unfrozen behind the application's back
        child.join(30)  # type: ignore[attr-defined]
    finally:
        gc.unfreeze()
