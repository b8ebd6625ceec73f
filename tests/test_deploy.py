"""The process-manager configurations of ``docs/deploy.md``, run with the real tools.

Each configuration is read from the page (its ``<!-- example file=NAME -->`` block), its
``/srv/app`` paths pointed at the test's directory and this interpreter, and run: the
systemd unit is checked by ``systemd-analyze verify`` and its service started the way
systemd starts a ``Type=notify`` service; supervisor, circus and honcho run the cluster
and stop it. Every stop must be the orderly one, with no process left.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import psutil
import pytest
from conftest import Lab
from test_doc_examples import ROOT, examples

from qframe.cluster.stat import Stat, read_statuses
from qframe.config import load as load_config
from qframe.testing import wait_until
from qframe.testing.notify import NotifyListener
from qframe.testing.servers import require_binary

pytestmark = pytest.mark.timeout(150)

PAGE = ROOT / "docs" / "deploy.md"
QFRAME = f"{sys.executable} -m qframe"


def block(name: str) -> str:
    """The text of the page's ``file=NAME`` block."""
    [text] = [example.text for example in examples(PAGE) if example.file == name]
    return text


def localized(text: str, app: Path) -> str:
    """``text`` with the page's ``/srv/app`` install pointed at ``app`` and this interpreter."""
    return text.replace("/srv/app/venv/bin/qframe", QFRAME).replace("/srv/app", str(app))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path, for Unix sockets (their paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="qf-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def running_stat(lab: Lab) -> Stat:
    """The running cluster's published status (waits for its first heartbeat)."""
    config = load_config(environ=lab.env, cwd=lab.tmp)
    [stat] = wait_until(
        lambda: [s for s in read_statuses(config) if s.status not in ("Stopping", "Stopped")], timeout=60
    )
    return stat


def cluster_pids(stat: Stat) -> list[int]:
    """Every process of the cluster ``stat`` describes."""
    return [stat.pid, stat.sentinel, stat.pusher, stat.monitor, *stat.workers]


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def assert_all_gone(pids: list[int]) -> None:
    """Wait until every pid has exited."""
    wait_until(lambda: all(gone(pid) for pid in pids), timeout=60)


def start(command: list[str], cwd: Path, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a process manager in a session of its own, its output in ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command, cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's session (the manager and whatever it left)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


# -- systemd ------------------------------------------------------------------------------


def unit(app: Path) -> configparser.ConfigParser:
    """The page's unit file, localized, as sections of settings."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(localized(block("qframe.service"), app))
    return parser


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    path = tmp_path / "qframe.service"
    path.write_text(localized(block("qframe.service"), tmp_path))
    done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "qframe.service" in line]
    assert done.returncode == 0 and complaints == [], done.stdout + done.stderr


def test_systemd_unit_runs_as_type_notify_with_watchdog_and_stops_in_order(lab: Lab) -> None:
    service = unit(lab.tmp)["Service"]
    assert (service["Type"], service["NotifyAccess"], service["KillMode"]) == ("notify", "all", "mixed")
    # a cluster killed by the watchdog in a broker outage may exit 2 at its restart: restart it again
    assert service["Restart"] == "on-failure" and "RestartPreventExitStatus" not in service
    manager = NotifyListener(str(lab.tmp / "notify.sock"))
    env = {
        **lab.env,
        "NOTIFY_SOCKET": manager.address,
        "WATCHDOG_USEC": str(int(service["WatchdogSec"]) * 1_000_000),
    }
    process = start(
        shlex.split(service["ExecStart"]), Path(service["WorkingDirectory"]), env, lab.tmp / "out"
    )
    try:
        manager.wait_for("READY", "1", timeout=float(service["TimeoutStartSec"]))
        manager.wait_for("WATCHDOG", "1")
        manager.wait_for("STATUS", "2/2 workers alive")
        pids = cluster_pids(running_stat(lab))
        process.send_signal(signal.SIGTERM)  # KillMode=mixed: the main process only
        assert process.wait(float(service["TimeoutStopSec"])) == 0, (lab.tmp / "out").read_text()
        manager.wait_for("STOPPING", "1")
        assert_all_gone(pids)
        assert "WARNING" not in (lab.tmp / "out").read_text()  # WatchdogSec is long enough
    finally:
        kill_group(process)
        manager.close()


# -- supervisor ---------------------------------------------------------------------------


def supervisor_conf(short_dir: Path, app: Path) -> list[str]:
    """Write a supervisord.conf around the page's program; return the supervisorctl command."""
    conf = short_dir / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nnodaemon = true\nlogfile = {short_dir}/supervisord.log\n"
        f"pidfile = {short_dir}/supervisord.pid\nchildlogdir = {short_dir}\n"
        f"[unix_http_server]\nfile = {short_dir}/s.sock\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        f"[supervisorctl]\nserverurl = unix://{short_dir}/s.sock\n"
        + localized(block("supervisord-program.conf"), app)
        + f"redirect_stderr = true\nstdout_logfile = {short_dir}/qframe.log\n"
    )
    return [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf)]


def supervisord(short_dir: Path, env: Mapping[str, str], app: Path) -> subprocess.Popen[bytes]:
    """Start supervisord on the conf of :func:`supervisor_conf`."""
    command = [sys.executable, "-m", "supervisor.supervisord", "-c", str(short_dir / "supervisord.conf")]
    return start(command, app, env, short_dir / "out")


def test_supervisor_program_runs_the_cluster_and_stops_it_in_order(lab: Lab, short_dir: Path) -> None:
    ctl = supervisor_conf(short_dir, lab.tmp)
    manager = supervisord(short_dir, lab.env, lab.tmp)
    try:
        pids = cluster_pids(running_stat(lab))
        stopped = subprocess.run([*ctl, "stop", "qframe"], capture_output=True, text=True, timeout=120)
        assert stopped.stdout.strip() == "qframe: stopped", stopped.stdout + stopped.stderr
        assert_all_gone(pids)
        assert "stopped: qframe (exit status 0)" in (short_dir / "supervisord.log").read_text()
        assert re.search(r"Q Cluster \S+ has stopped\.", (short_dir / "qframe.log").read_text())
        subprocess.run([*ctl, "shutdown"], capture_output=True, timeout=60)
        manager.wait(60)
    finally:
        kill_group(manager)


def test_supervisor_gives_up_on_a_wrong_configuration_as_fatal(lab: Lab, short_dir: Path) -> None:
    ctl = supervisor_conf(short_dir, lab.tmp)
    manager = supervisord(short_dir, {**lab.env, "QFRAME_BROKER": "nosuch"}, lab.tmp)
    try:

        def status() -> str:
            done = subprocess.run([*ctl, "status", "qframe"], capture_output=True, text=True, timeout=60)
            return done.stdout

        assert "FATAL" in wait_until(lambda: "FATAL" in status() and status(), timeout=90)
        assert "qframe: error: unknown broker 'nosuch'" in (short_dir / "qframe.log").read_text()
        subprocess.run([*ctl, "shutdown"], capture_output=True, timeout=60)
        manager.wait(60)
    finally:
        kill_group(manager)


# -- circus -------------------------------------------------------------------------------


def test_circus_watcher_runs_the_cluster_and_stops_it_in_order(lab: Lab, short_dir: Path) -> None:
    endpoint = f"ipc://{short_dir}/control.sock"
    conf = short_dir / "circus.ini"
    conf.write_text(
        f"[circus]\nendpoint = {endpoint}\npubsub_endpoint = ipc://{short_dir}/pubsub.sock\n"
        "statsd = false\n"
        + localized(block("circus.ini"), lab.tmp)
        + f"stderr_stream.class = FileStream\nstderr_stream.filename = {short_dir}/qframe.log\n"
    )
    circusd = start([sys.executable, "-m", "circus.circusd", str(conf)], lab.tmp, lab.env, short_dir / "out")
    ctl = [sys.executable, "-m", "circus.circusctl", "--endpoint", endpoint, "--timeout", "100"]
    try:
        pids = cluster_pids(running_stat(lab))
        stopped = subprocess.run(
            [*ctl, "stop", "--waiting", "qframe"], capture_output=True, text=True, timeout=120
        )
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert_all_gone(pids)
        assert re.search(r"Q Cluster \S+ has stopped\.", (short_dir / "qframe.log").read_text())
        subprocess.run([*ctl, "quit"], capture_output=True, timeout=60)
        circusd.wait(60)
    finally:
        kill_group(circusd)


# -- Procfile -----------------------------------------------------------------------------


def test_procfile_runs_under_honcho_and_stops_in_order_on_sigterm(lab: Lab) -> None:
    (lab.tmp / "Procfile").write_text(block("Procfile"))
    env = {**lab.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    honcho = start([sys.executable, "-m", "honcho", "start"], lab.tmp, env, lab.tmp / "out")
    try:
        pids = cluster_pids(running_stat(lab))
        honcho.send_signal(signal.SIGTERM)  # what the platform sends on stop
        honcho.wait(60)
        assert_all_gone(pids)
        output = (lab.tmp / "out").read_text()
        assert re.search(r"Q Cluster \S+ has stopped\.", output), output
        # honcho runs the line through /bin/sh and reports the shell's status, not the cluster's
        assert "worker.1 stopped" in output and "SIGKILL" not in output, output
    finally:
        kill_group(honcho)


# -- Kubernetes ---------------------------------------------------------------------------


def commands(manifest: str) -> list[list[str]]:
    """The ``command: [...]`` lists of the manifest, in order (JSON flow lists)."""
    return [json.loads(found) for found in re.findall(r"command: (\[.*\])", manifest)]


def test_kubernetes_probes_pass_while_the_cluster_runs_and_fail_after_it_stopped(lab: Lab) -> None:
    manifest = block("deployment.yaml")
    container, *probes = commands(manifest)
    assert container[:2] == ["qframe", "cluster"] and len(probes) == 3
    grace_period = int(re.search(r"terminationGracePeriodSeconds: (\d+)", manifest)[1])  # type: ignore[index]
    assert grace_period >= load_config(environ={}).grace + 60
    cluster = lab.cluster(*container[2:])
    running_stat(lab)

    def probe(command: list[str]) -> int:
        argv = [sys.executable, "-m", "qframe", *command[1:]]
        env = {**os.environ, **lab.env}
        return subprocess.run(argv, cwd=lab.tmp, env=env, capture_output=True, timeout=60).returncode

    assert [probe(command) for command in probes] == [0, 0, 0]
    assert cluster.stop() == 0
    assert [probe(command) for command in probes] == [1, 1, 1]
