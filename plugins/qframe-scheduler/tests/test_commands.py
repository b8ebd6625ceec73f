"""``qframe schedule ...``: the commands the plugin adds through the core's command hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from qframe.cli import cli
from qframe_scheduler.commands import schedule_group

cli.add_command(schedule_group)

#: ``run(*args)``: the result of ``qframe schedule *args``.
Invoke = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``run(*args) -> Result`` of ``qframe schedule *args`` on a queue in ``tmp_path``."""
    monkeypatch.setenv("QFRAME_BROKER_URL", f"sqlite:///{tmp_path}/q.db")
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["schedule", *args])

    return invoke


def test_add_list_show_pause_resume_run_now_delete(run: Invoke) -> None:
    added = run("add", "nightly", "qframe.testing.tasks.inc", "[1]", "--type", "DAILY",
                "--next-run", "2030-01-01T01:00", "--timezone", "Europe/Amsterdam")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.output == "nightly: next run 2030-01-01T01:00:00+01:00\n"
    assert run("list").output == "nightly\tDAILY\t2030-01-01T01:00:00+01:00\tenabled\n"
    assert run("pause", "nightly").exit_code == 0
    assert run("list").output.endswith("\tpaused\n")
    assert run("resume", "nightly").exit_code == 0
    task = run("run-now", "nightly").output.strip()
    shown = json.loads(run("show", "nightly").output)
    assert shown["task"] == task and shown["enabled"] is True and shown["schedule_type"] == "DAILY"
    assert run("delete", "nightly").exit_code == 0
    assert run("list").output == ""
    gone = run("show", "nightly")
    assert (gone.exit_code, gone.output) == (2, "qframe: error: no schedule named 'nightly'\n")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--type", "CRON", "--cron", "99 * * * *"], "qframe: error: invalid cron expression '99 * * * *'"),
        (["--type", "SOMETIMES"], "qframe: error: unknown schedule type 'SOMETIMES'; types: ONCE,"),
        (["--timezone", "Nowhere/Land"], "qframe: error: unknown timezone 'Nowhere/Land'"),
    ],
)
def test_add_refuses_bad_input_in_one_line(run: Invoke, args: list[str], line: str) -> None:
    refused = run("add", "bad", "qframe.testing.tasks.inc", *args)
    assert refused.exit_code == 2
    assert refused.output.startswith(line) and refused.output.count("\n") == 1
    assert run("list").output == ""


def test_add_refuses_a_task_path_that_does_not_import(run: Invoke) -> None:
    refused = run("add", "bad", "nowhere.at_all")
    assert refused.exit_code == 2
    assert refused.output.startswith("qframe: error: task path 'nowhere.at_all' does not import")


def test_the_installed_plugin_adds_the_command_to_qframe(tmp_path: Path) -> None:
    env = {**os.environ, "QFRAME_BROKER_URL": f"sqlite:///{tmp_path}/q.db"}
    env.pop("QFRAME_PLUGINS", None)
    command = ["schedule", "add", "every", "qframe.testing.tasks.inc", "--minutes", "5"]
    done = subprocess.run(
        [sys.executable, "-m", "qframe", *command],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("every: next run ")
