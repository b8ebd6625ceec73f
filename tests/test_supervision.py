"""Supervision: systemd's notification protocol, the pidfile, exit codes and ``qframe health``.

Real ``qframe cluster`` processes on the embedded SQLite broker. A real ``AF_UNIX``
datagram socket stands in for systemd's: the test binds it and passes its address in
``NOTIFY_SOCKET``, as systemd does for a ``Type=notify`` service. A broker outage is
``qframe_test_brokers:GoesAway``: SQLite whose queue sizes fail while a marker file exists.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import APP, Lab

from qframe.builtin import sdnotify
from qframe.cluster.stat import Stat, StatusWriter, config_keys, read_statuses
from qframe.commands.health import verdict
from qframe.config import load as load_config
from qframe.notify_socket import NotifySocket
from qframe.pidfile import read_pid
from qframe.testing import wait_until
from qframe.testing.cluster import ClusterProcess
from qframe.testing.notify import NotifyListener

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[NotifyListener]:
    """A stand-in for systemd's notification socket, at a path in the test's directory."""
    listener = NotifyListener(str(tmp_path / "notify.sock"))
    try:
        yield listener
    finally:
        listener.close()


def notified_cluster(lab: Lab, manager: NotifyListener, *args: str) -> ClusterProcess:
    """A running cluster whose service manager is ``manager``."""
    lab.env["NOTIFY_SOCKET"] = manager.address
    return lab.cluster(*args)


def sentinel_pid(lab: Lab) -> int:
    """The sentinel's pid, from the cluster's published status."""
    config = load_config(environ=lab.env, cwd=lab.tmp)
    stats = wait_until(lambda: read_statuses(config), timeout=30)
    return int(stats[0].sentinel)


def qframe(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m qframe ARGS`` in the test app with the lab's settings."""
    return subprocess.run(
        [sys.executable, "-m", "qframe", *args],
        cwd=APP,
        env={**os.environ, **lab.env},
        capture_output=True,
        text=True,
        timeout=90,
    )


# -- the notification protocol -------------------------------------------------------------


def test_notify_socket_sends_ready_status_watchdog_and_stopping_in_order(
    lab: Lab, manager: NotifyListener
) -> None:
    cluster = notified_cluster(lab, manager)
    ready = manager.wait_for("READY", "1")
    status = manager.wait_for("STATUS", "2/2 workers alive", since=ready)
    manager.wait_for("WATCHDOG", "1", since=ready)
    assert "queued" in manager.values("STATUS")[-1] and "in progress" in manager.values("STATUS")[-1]
    assert cluster.stop() == 0
    stopping = manager.wait_for("STOPPING", "1", since=status)
    assert manager.values("READY") == ["1"] and manager.values("STOPPING") == ["1"]
    assert stopping > ready


def test_notify_socket_reaches_an_abstract_address(lab: Lab) -> None:
    listener = NotifyListener(f"@qframe-test-{uuid.uuid4().hex}")
    try:
        cluster = notified_cluster(lab, listener)
        listener.wait_for("READY", "1")
        listener.wait_for("WATCHDOG", "1")
        assert cluster.stop() == 0
    finally:
        listener.close()


def test_sd_notify_false_forces_notifications_off(lab: Lab, manager: NotifyListener) -> None:
    lab.configure(sd_notify="false")
    cluster = notified_cluster(lab, manager)
    wait_until(lambda: read_statuses(load_config(environ=lab.env, cwd=lab.tmp)), timeout=30)
    assert cluster.stop() == 0
    assert manager.flush() == 0  # nothing arrived before the test's own marker


def test_no_notify_socket_sends_nothing_and_cluster_runs() -> None:
    assert not NotifySocket({}).enabled
    assert not NotifySocket({"NOTIFY_SOCKET": "relative/path"}).enabled
    assert not NotifySocket({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled
    assert NotifySocket({}).send(READY="1") is False


def test_gone_service_manager_is_one_warning_and_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sender = NotifySocket({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    assert sender.send(READY="1") is False
    assert sender.send(READY="1") is False
    warnings = [r for r in caplog.records if "cannot notify the service manager" in r.getMessage()]
    assert len(warnings) == 1
    sender.close()


def test_watchdog_is_not_pinged_while_a_child_is_dead(manager: NotifyListener) -> None:
    plugin = sdnotify.ServiceNotifier({"NOTIFY_SOCKET": manager.address})
    config = load_config(environ={"QFRAME_PLUGINS": ""})
    stat = Stat("c" * 32, "default", "here", 1, workers=[11, 12], workers_alive=1, children_alive=False)
    plugin.qframe_sentinel_tick(stat, config)
    position = manager.wait_for("STATUS", "1/2 workers alive")
    assert "WATCHDOG" not in manager.messages[position]
    stat.workers_alive, stat.children_alive = 2, True
    plugin.qframe_sentinel_tick(stat, config)
    manager.wait_for("WATCHDOG", "1", since=position + 1)


@pytest.mark.timeout(30)
def test_service_manager_that_stops_reading_never_blocks_the_sender(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "full.sock"))  # bound, never read: its queue fills up
    try:
        sender = NotifySocket({"NOTIFY_SOCKET": str(tmp_path / "full.sock")})
        delivered = [sender.send(WATCHDOG="1") for _ in range(1000)]
        assert delivered[0] and not delivered[-1]
        sender.close()
    finally:
        listener.close()


def test_watchdog_stops_while_the_broker_is_unreachable_and_resumes_after(
    lab: Lab, manager: NotifyListener
) -> None:
    marker = lab.tmp / "outage"
    lab.configure(test_outage=marker, store="sqlite")
    notified_cluster(lab, manager, "--broker", "qframe_test_brokers:GoesAway")
    manager.wait_for("WATCHDOG", "1")
    marker.touch()
    unreachable = manager.wait_for("STATUS", "broker unreachable")
    wait_until(lambda: len(lab.runs("outage")) >= 5, timeout=40)  # five failed ticks of the sentinel
    manager.flush()
    assert manager.values("WATCHDOG", since=unreachable) == []
    marker.unlink()
    back = manager.wait_for("WATCHDOG", "1", since=unreachable)
    assert "broker unreachable" not in manager.values("STATUS", since=unreachable)[-1]
    assert back > unreachable


def test_watchdog_stops_while_the_sentinel_is_frozen(lab: Lab, manager: NotifyListener) -> None:
    cluster = notified_cluster(lab, manager)
    manager.wait_for("WATCHDOG", "1")
    sentinel = sentinel_pid(lab)
    os.kill(sentinel, signal.SIGSTOP)
    try:
        frozen = manager.count()
        config = load_config(environ=lab.env, cwd=lab.tmp)
        # the heartbeat ages while the sentinel is frozen: wait until it is clearly stale
        wait_until(lambda: verdict(read_statuses(config), "default", None, 1.0, time.time()), timeout=40)
        manager.flush()
        assert manager.values("WATCHDOG", since=frozen) == []
    finally:
        os.kill(sentinel, signal.SIGCONT)
    manager.wait_for("WATCHDOG", "1", since=frozen)
    assert cluster.stop() == 0


def test_watchdog_stops_while_a_dead_worker_cannot_be_replaced(lab: Lab, manager: NotifyListener) -> None:
    marker = lab.tmp / "stuck"
    lab.configure(plugin_modules="qframe_stuck_boot_plugin", test_stuck=marker)
    cluster = notified_cluster(lab, manager)
    manager.wait_for("WATCHDOG", "1")
    marker.touch()
    os.kill(cluster.worker_pids()[0], signal.SIGKILL)
    wait_until(lambda: lab.runs("stuck"), timeout=40)  # the replacement cannot finish booting
    since = manager.flush()
    config = load_config(environ=lab.env, cwd=lab.tmp)
    wait_until(lambda: verdict(read_statuses(config), "default", None, 1.0, time.time()), timeout=40)
    manager.flush()
    assert manager.values("WATCHDOG", since=since) == []
    marker.unlink()  # the replacement boots: the sentinel guards again
    manager.wait_for("WATCHDOG", "1", since=since)
    assert cluster.stop() == 0


# -- exit codes ---------------------------------------------------------------------------


def test_outage_longer_than_max_outage_exits_3_after_stopping_notification(
    lab: Lab, manager: NotifyListener
) -> None:
    marker = lab.tmp / "outage"
    lab.configure(test_outage=marker, max_outage=1, store="sqlite")
    cluster = notified_cluster(lab, manager, "--broker", "qframe_test_brokers:GoesAway")
    manager.wait_for("WATCHDOG", "1")
    marker.touch()
    assert cluster.process.wait(60) == 3
    cluster.wait_for(r"longer than max_outage \(1 s\); stopping the cluster \(exit code 3\)")
    manager.wait_for("STOPPING", "1")


def test_requested_stop_exits_0_and_failed_start_exits_2(lab: Lab) -> None:
    assert lab.cluster().stop() == 0
    lab.configure(store="sqlite", startup_wait=0.2)
    failed = qframe(lab, "cluster", "--broker", "qframe_test_brokers:PingFails")
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1 and "cannot reach the broker" in failed.stderr


# -- the pidfile --------------------------------------------------------------------------


def test_pidfile_holds_the_main_pid_while_running_and_is_removed_on_exit(lab: Lab) -> None:
    pidfile = lab.tmp / "run" / "qframe.pid"
    pidfile.parent.mkdir()
    cluster = lab.cluster("--pidfile", str(pidfile))
    # written right after the "running." line, by the cluster_started hook
    wait_until(lambda: read_pid(pidfile) == cluster.process.pid, timeout=30)
    assert pidfile.read_text() == f"{cluster.process.pid}\n"
    assert cluster.stop() == 0
    assert not pidfile.exists()


def test_pidfile_of_a_live_process_refuses_to_start_with_one_line(lab: Lab) -> None:
    pidfile = lab.tmp / "qframe.pid"
    pidfile.write_text(f"{os.getpid()}\n")  # this test's own process: alive
    done = qframe(lab, "cluster", "--pidfile", str(pidfile))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"qframe: error: pidfile {pidfile} belongs to running process {os.getpid()}; not starting"
    ]
    assert pidfile.read_text() == f"{os.getpid()}\n"
    assert not read_statuses(load_config(environ=lab.env, cwd=lab.tmp))


def test_stale_pidfile_of_a_dead_process_is_replaced(lab: Lab) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(30)
    assert not psutil.pid_exists(gone.pid)
    pidfile = lab.tmp / "qframe.pid"
    pidfile.write_text(f"{gone.pid}\n")
    cluster = lab.cluster("--pidfile", str(pidfile))
    # written right after the "running." line, by the cluster_started hook
    wait_until(lambda: read_pid(pidfile) == cluster.process.pid, timeout=30)
    assert pidfile.read_text() == f"{cluster.process.pid}\n"
    where = re.escape(str(pidfile))
    cluster.wait_for(rf"INFO replacing the stale pidfile {where} of process {gone.pid}, which is gone")
    assert cluster.stop() == 0
    assert not pidfile.exists()


def test_pidfile_in_a_missing_directory_is_one_error_line(lab: Lab) -> None:
    pidfile = lab.tmp / "missing" / "qframe.pid"
    done = qframe(lab, "cluster", "--pidfile", str(pidfile))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"qframe: error: cannot write pidfile {pidfile}: {pidfile.parent} is not a writable directory"
    ]


# -- qframe health ------------------------------------------------------------------------


def test_health_exits_0_with_a_live_cluster_and_1_after_it_stopped(lab: Lab) -> None:
    cluster = lab.cluster()
    wait_until(lambda: read_statuses(load_config(environ=lab.env, cwd=lab.tmp)), timeout=30)
    healthy = qframe(lab, "health")
    assert healthy.returncode == 0, healthy.stderr
    assert cluster.stop() == 0
    stopped = qframe(lab, "health")
    assert stopped.returncode == 1
    assert len(stopped.stderr.splitlines()) == 1
    assert stopped.stderr.startswith("qframe: unhealthy: ")


def test_health_exits_1_when_the_heartbeat_is_older_than_max_age(lab: Lab) -> None:
    lab.configure(guard_cycle=3)  # heartbeats live 9 s: long enough to see one go stale
    lab.cluster()
    config = load_config(environ=lab.env, cwd=lab.tmp)
    wait_until(lambda: read_statuses(config), timeout=30)
    os.kill(sentinel_pid(lab), signal.SIGSTOP)  # resumed by the lab's kill at the end
    wait_until(lambda: verdict(read_statuses(config), "default", None, 1.5, time.time()), timeout=30)
    stale = qframe(lab, "health", "--max-age", "1")
    assert stale.returncode == 1
    assert "s old (--max-age 1 s)" in stale.stderr and len(stale.stderr.splitlines()) == 1


def test_health_checks_the_named_queue_only(lab: Lab) -> None:
    lab.cluster()
    wait_until(lambda: read_statuses(load_config(environ=lab.env, cwd=lab.tmp)), timeout=30)
    other = qframe(lab, "health", "--name", "other")
    assert other.returncode == 1
    assert "no cluster of queue 'other'" in other.stderr


def test_health_counts_another_hosts_cluster_only_with_any_host(lab: Lab) -> None:
    config = load_config(environ=lab.env, cwd=lab.tmp)
    writer = StatusWriter(config, config_keys(config))
    try:
        writer.write(Stat(uuid.uuid4().hex, "default", "elsewhere", 1, status="Idle"), ttl=60)
    finally:
        writer.close()
    here = qframe(lab, "health")
    assert here.returncode == 1
    assert f"on host {socket.gethostname()}" in here.stderr
    anywhere = qframe(lab, "health", "--any-host")
    assert anywhere.returncode == 0, anywhere.stderr


def test_watchdog_shorter_than_two_guard_cycles_is_one_warning(lab: Lab, manager: NotifyListener) -> None:
    lab.env["WATCHDOG_USEC"] = "300000"  # 0.3 s, with guard_cycle 0.2
    cluster = notified_cluster(lab, manager)
    [line] = cluster.wait_for(r"WARNING the service manager's watchdog expires after 0\.3 s")
    assert line.endswith("less than two guard cycles (0.4 s): raise WatchdogSec= or lower guard_cycle")
    assert cluster.stop() == 0
    assert sdnotify.watchdog_too_short(load_config(environ=lab.env), {"WATCHDOG_USEC": "30000000"}) is None
