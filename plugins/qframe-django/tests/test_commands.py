"""manage.py qinfo / qmonitor / qmemory run the core's commands on the project's settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from clusters import HERE, cluster_env
from django.core.management import CommandError, call_command

from qframe.cli import cli

pytestmark = [pytest.mark.timeout(60), pytest.mark.django_db(transaction=True)]


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py *args`` on the test database, as a user runs it."""
    return subprocess.run(
        [sys.executable, str(HERE / "manage.py"), *args], cwd=HERE, env=cluster_env("default"),
        capture_output=True, text=True, timeout=50,
    )  # fmt: skip


def test_qinfo_prints_the_cores_report_for_the_projects_queue(capsys: pytest.CaptureFixture[str]) -> None:
    from qframe_django import compat
    from qframe_django.conf import reset

    reset()
    compat.async_task("djtest_app.tasks.add", 1, 2)
    done = manage("qinfo", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["queue"] == "djtest" and report["queued"] == 1
    assert report["broker"].startswith("orm database=default (sqlite)")


def test_qinfo_through_call_command(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("qinfo", "--json")
    assert json.loads(capsys.readouterr().out)["queue"] == "djtest"


@pytest.mark.parametrize("command", ["qmonitor", "qmemory"])
def test_monitor_and_memory_delegate_or_say_they_are_not_available(command: str) -> None:
    core = command[1:]
    if core in cli.commands:
        pytest.skip(f"the installed core has 'qframe {core}'")
    with pytest.raises(CommandError, match=rf"'qframe {core}' is not available in the installed qframe"):
        call_command(command)
    done = manage(command)
    assert done.returncode != 0 and f"'qframe {core}' is not available" in done.stderr


def test_run_once_starts_and_stops_a_cluster_with_the_seeds_log_lines(tmp_path: Path) -> None:
    done = manage("qcluster", "--run-once", "--name", "once")
    assert done.returncode == 0, done.stderr
    log = done.stdout + done.stderr
    for line in ("starting.", "serves queue 'once'", "running.", "stopping.", "has stopped."):
        assert line in log


def test_the_orm_broker_without_django_is_a_one_line_error(tmp_path: Path) -> None:
    env = {k: v for k, v in cluster_env("default").items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(QFRAME_BROKER="orm", QFRAME_SECRET_KEY="k")
    done = subprocess.run(
        [sys.executable, "-m", "qframe", "info"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=50,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "qframe: error: the orm driver needs Django: set DJANGO_SETTINGS_MODULE, or run 'manage.py qcluster'"
    )
