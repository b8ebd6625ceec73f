"""The conformance suite for process managers, with the child functions it starts.

A manager's tests subclass :class:`ProcessManagerContract` and provide ``manager``::

    class TestPrefork(ProcessManagerContract):
        @pytest.fixture(params=["fork", "forkserver", "spawn"])
        def manager(self, request):
            return PreforkManager(Config(start_method=request.param))
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator

import pytest

from qframe.processes import Channel, ProcessManager


def exit_with(code: int) -> None:
    """A child that exits at once with ``code``."""
    raise SystemExit(code)


def sleep_for(seconds: float, ready: Channel) -> None:
    """A child that reports its pid, then sleeps (something to kill)."""
    ready.send(os.getpid())
    time.sleep(seconds)


def overrun(channel: Channel, ready: Channel) -> None:
    """A worker lane stand-in: reports its pid, then ends on ``("timeout", ack_id)`` (or when killed)."""
    ready.send(os.getpid())
    while channel.poll(60):
        if channel.recv()[0] == "timeout":
            raise SystemExit(1)


def echo(channel: Channel) -> None:
    """A child that answers each message on ``channel`` with it doubled, until ``None``."""
    while (message := channel.recv()) is not None:
        channel.send(message * 2)


def report_orphaned(channel: Channel) -> None:
    """A child that sends whether its manager's orphan check says its parent has gone."""
    from qframe.builtin.prefork import PreforkManager
    from qframe.config import Config

    channel.send(PreforkManager(Config()).orphan_check()())


def call_back(address: str, authkey: bytes) -> None:
    """A child that connects to the hub at ``address`` and sends its pid."""
    from qframe.builtin.prefork import PreforkManager
    from qframe.config import Config

    connection = PreforkManager(Config()).connect(address, authkey, lambda: False, timeout=10)
    connection.send(("hello", os.getpid()))
    connection.close()


class ProcessManagerContract:
    """What the cluster needs from a process manager, as tests."""

    @pytest.fixture
    def manager(self) -> ProcessManager:
        """Return the process manager under test."""
        raise NotImplementedError("a ProcessManagerContract subclass provides manager")

    @pytest.fixture
    def rundir(self) -> Iterator[str]:
        """A private directory for channel addresses (Unix socket paths stay short)."""
        with tempfile.TemporaryDirectory(prefix="qframe-pm-") as path:
            yield path

    def test_spawned_child_runs_and_its_exit_code_is_seen(self, manager: ProcessManager) -> None:
        child = manager.spawn(exit_with, (3,), "Process-exit")
        assert manager.wait([child], [], 30) == [child]
        child.join(5)
        assert child.exitcode == 3 and not child.is_alive()

    def test_liveness_wait_returns_when_the_child_ends_not_before(self, manager: ProcessManager) -> None:
        ready_r, ready_w = manager.pipe(duplex=False)
        child = manager.spawn(sleep_for, (0.5, ready_w), "Process-sleep")
        assert isinstance(ready_r.recv(), int)
        assert child.is_alive()
        assert manager.wait([child], [], 0.05) == []
        assert manager.wait([child], [], 30) == [child]
        child.join(5)
        assert child.exitcode == 0

    def test_orphan_check_is_false_while_the_parent_lives(self, manager: ProcessManager) -> None:
        mine, theirs = manager.pipe()
        child = manager.spawn(report_orphaned, (theirs,), "Process-orphan")
        assert mine.poll(30) and mine.recv() is False
        child.join(30)

    def test_kill_stops_a_child_at_once(self, manager: ProcessManager) -> None:
        ready_r, ready_w = manager.pipe(duplex=False)
        child = manager.spawn(sleep_for, (60, ready_w), "Process-victim")
        ready_r.recv()
        manager.kill(child)
        assert not child.is_alive()
        assert child.exitcode is not None and child.exitcode != 0

    def test_channel_round_trip(self, manager: ProcessManager) -> None:
        mine, theirs = manager.pipe()
        child = manager.spawn(echo, (theirs,), "Process-echo")
        theirs.close()
        for message in (21, "ab", [1]):
            mine.send(message)
            assert mine.poll(30)
            assert mine.recv() == message * 2
        mine.send(None)
        child.join(30)
        assert child.exitcode == 0

    def test_wait_wakes_for_a_readable_channel(self, manager: ProcessManager) -> None:
        mine, theirs = manager.pipe()
        child = manager.spawn(echo, (theirs,), "Process-echo")
        mine.send(1)
        assert manager.wait([child], [mine], 30) == [mine]
        assert mine.recv() == 2
        mine.send(None)
        child.join(30)

    def test_hub_accepts_a_connection_from_a_child(self, manager: ProcessManager, rundir: str) -> None:
        authkey = os.urandom(16)
        hub = manager.listen(os.path.join(rundir, "hub.sock"), authkey)
        try:
            child = manager.spawn(call_back, (os.path.join(rundir, "hub.sock"), authkey), "Process-call")
            deadline = time.monotonic() + 30
            got = None
            while got is None and time.monotonic() < deadline:
                _, ready = hub.wait(1.0)
                for connection in ready:
                    got = connection.recv()
            child.join(30)
            assert got == ("hello", child.pid)
        finally:
            hub.close()

    def test_timeout_policy_stops_the_worker(self, manager: ProcessManager) -> None:
        ready_r, ready_w = manager.pipe(duplex=False)
        mine, theirs = manager.pipe()
        child = manager.spawn(overrun, (theirs, ready_w), "Process-overrun")
        pid = ready_r.recv()
        manager.enforce_timeout(pid, mine, "ack-1")
        assert manager.wait([child], [], 30) == [child]
        child.join(5)
        assert child.exitcode is not None and child.exitcode != 0

    def test_kill_all_leaves_no_child_running(self, manager: ProcessManager) -> None:
        children = []
        for index in range(2):
            ready_r, ready_w = manager.pipe(duplex=False)
            children.append(manager.spawn(sleep_for, (60, ready_w), f"Process-{index}"))
            ready_r.recv()
        manager.kill_all()
        assert not any(child.is_alive() for child in children)
