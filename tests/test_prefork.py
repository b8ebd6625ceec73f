"""The prefork process manager passes the ProcessManagerContract under every start method."""

from __future__ import annotations

import gc
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from qframe.builtin.prefork import PreforkManager
from qframe.builtin.sockets import SocketHub, connect
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


def test_a_socket_channels_poll_sees_a_waiting_message_and_the_end_of_the_connection(tmp_path: Path) -> None:
    hub = SocketHub(str(tmp_path / "hub.sock"), b"key")
    try:
        client = connect(str(tmp_path / "hub.sock"), b"key", lambda: False, timeout=5)
        arrived: list[Any] = []
        while not arrived:
            arrived = hub.wait(5)[0]
        [server] = arrived
        assert not server.poll()
        client.send(("done",))
        client.send(("bye",))
        assert server.poll(5) and server.recv() == ("done",)
        assert server.poll() and server.recv() == ("bye",)
        assert not server.poll()
        client.close()
        assert server.poll(), "the end of the connection is readable"
        with pytest.raises(EOFError):
            server.recv()
    finally:
        hub.close()
