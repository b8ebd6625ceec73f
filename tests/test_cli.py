"""The ``qframe`` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import APP, Lab

import qframe
from qframe.testing.cluster import ClusterProcess

pytestmark = pytest.mark.timeout(120)


def qf(lab: Lab, *args: str, cwd: Path = APP) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qframe", *args],
        cwd=cwd,
        env={**os.environ, **lab.env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version(lab: Lab) -> None:
    done = qf(lab, "--version")
    assert done.returncode == 0 and qframe.__version__ in done.stdout


def test_enqueue_then_result_through_a_cluster(lab: Lab) -> None:
    done = qf(lab, "enqueue", "qframe.testing.tasks.inc", "[41]")
    assert done.returncode == 0, done.stderr
    task_id = done.stdout.strip()
    missing = qf(lab, "result", task_id)
    assert missing.returncode == 1 and "no result for task" in missing.stderr
    lab.cluster()
    done = qf(lab, "result", task_id, "--wait", "20")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert (record["result"], record["success"], record["attempts"]) == (42, True, 1)


def test_info_reports_clusters_and_counts(lab: Lab) -> None:
    cluster = lab.cluster()
    task_id = lab.client.async_task("qframe.testing.tasks.inc", 1)
    assert lab.client.result(task_id, wait=20) == 2
    lab.client.async_task("qframe.testing.tasks.boom", "x")
    report = json.loads(qf(lab, "info", "--json").stdout)
    assert [c["status"] in ("Idle", "Working") for c in report["clusters"]] == [True]
    assert report["clusters"][0]["workers"] and report["successes"] >= 1
    assert report["tasks_per_hour"] >= 1
    table = qf(lab, "info")
    assert table.returncode == 0 and "successes:" in table.stdout
    cluster.stop()


def test_enqueue_refuses_a_path_that_does_not_import(lab: Lab) -> None:
    done = qf(lab, "enqueue", "no_such_module.func")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "qframe: error: task path 'no_such_module.func' does not import: no module named 'no_such_module'"
    )
    assert lab.client.queue_size() == 0


def test_malformed_config_is_one_line_per_problem(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "qframe.toml").write_text("wokers = 2\nlease = 'soon'\n")
    done = qf(lab, "info", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "qframe: error: unknown option 'wokers' in qframe.toml (did you mean 'workers'?)",
        "qframe: error: option 'lease' must be a number, got 'soon' (from qframe.toml)",
    ]


def test_plugins_lists_drivers_by_group(lab: Lab) -> None:
    done = qf(lab, "plugins")
    assert done.returncode == 0
    assert "qframe.brokers: " in done.stdout and "sqlite" in done.stdout
    assert "qframe.process_managers: prefork" in done.stdout


def test_plugins_lists_each_plugins_options_and_prints_their_table(lab: Lab) -> None:
    lab.configure(plugin_modules="qframe_option_plugin")
    done = qf(lab, "plugins")
    assert done.returncode == 0, done.stderr
    assert "  qframe_option_plugin: qframe_add_options, qframe_process_boot\n" in done.stdout
    assert (
        "plugin options:\n"
        '  testopt_greeting (str, default "hello", env QFRAME_TESTOPT_GREETING): '
        "What each cluster process records at boot.\n"
        "  testopt_level (int, default 1, env QFRAME_TESTOPT_LEVEL): "
        "A number each cluster process records at boot.\n"
    ) in done.stdout
    table = qf(lab, "plugins", "--markdown").stdout.splitlines()
    assert table[0] == "| option | type | default | environment | meaning |"
    assert table[3] == (
        "| `testopt_level` | int | `1` | `QFRAME_TESTOPT_LEVEL` "
        "| A number each cluster process records at boot. |"
    )


def test_the_plugins_allow_list_from_the_environment_governs_an_installed_plugin(
    lab: Lab, tiny_dist: Path
) -> None:
    lab.env["PYTHONPATH"] = str(tiny_dist)
    assert "tinyplug" not in qf(lab, "plugins").stdout  # the lab sets QFRAME_PLUGINS=""
    lab.configure(plugins="tinyplug")
    listing = qf(lab, "plugins").stdout
    assert "  tinyplug: qframe_add_options\n" in listing
    assert '  tinyplug_colour (str, default "blue", env QFRAME_TINYPLUG_COLOUR): ' in listing


def python(lab: Lab, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, **lab.env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def lines_naming(text: str, word: str) -> list[str]:
    return [line for line in text.splitlines() if word in line]


def test_a_broken_plugin_is_one_warning_and_every_command_works_without_it(
    lab: Lab, broken_dists: Path
) -> None:
    lab.env["PYTHONPATH"] = str(broken_dists)
    lab.configure(plugins="none")  # load every installed entry point
    listing = qf(lab, "plugins")
    assert listing.returncode == 0, listing.stderr
    assert "  brokenplug: broken, not loaded: plugin 'brokenplug' (entry point" in listing.stdout
    assert "  typoplug: broken, not loaded: " in listing.stdout
    for word in ("'brokenplug'", "'typoplug'"):
        [warning] = lines_naming(listing.stderr, word)
        assert " WARNING plugin " in warning and warning.endswith("; carrying on without it")
    producer = python(lab, "import qframe; print(qframe.async_task('qframe.testing.tasks.inc', 1))", APP)
    assert producer.returncode == 0, producer.stderr
    [warning] = lines_naming(producer.stderr, "'brokenplug'")
    assert "does not import: ModuleNotFoundError: No module named 'nothere'" in warning
    cluster = lab.cluster()
    assert lab.client.result(producer.stdout.strip(), wait=20) == 2
    [warning] = lines_naming(cluster.log, "'brokenplug'")
    assert " WARNING plugin 'brokenplug' (entry point 'brokenplug = qframe_broken_dist' of " in warning
    assert len(lines_naming(cluster.log, "'typoplug'")) == 1
    assert cluster.stop() == 0


def test_strict_plugins_stops_the_cluster_at_start_with_one_line(lab: Lab, broken_dists: Path) -> None:
    lab.env["PYTHONPATH"] = str(broken_dists)
    lab.configure(plugins="brokenplug", strict_plugins="true")
    for command in ("cluster", "plugins"):
        done = qf(lab, command)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [
            "qframe: error: plugin 'brokenplug' (entry point 'brokenplug = qframe_broken_dist' of "
            "distribution qframe-broken 0.1) does not import: ModuleNotFoundError: No module named "
            "'nothere' (strict_plugins is on)"
        ]


PROJECT_PLUGIN = """
from qframe import hookimpl


@hookimpl
def qframe_task_succeeded(result):
    pass
"""


def test_plugin_modules_and_tasks_beside_the_config_import_for_every_command(lab: Lab) -> None:
    project = lab.tmp / "project"
    (project / "sub").mkdir(parents=True)
    (project / "qframe.toml").write_text('plugin_modules = ["projplug"]\n')
    (project / "projplug.py").write_text(PROJECT_PLUGIN)
    (project / "projtasks.py").write_text("def double(x):\n    return 2 * x\n")
    here = project / "sub"
    listing = qf(lab, "plugins", cwd=here)
    assert listing.returncode == 0, listing.stderr
    assert "  projplug: qframe_task_succeeded\n" in listing.stdout
    missing = qf(lab, "result", "0" * 32, cwd=here)
    assert missing.returncode == 1, missing.stderr  # no result yet, not a plugin that does not import
    enqueued = qf(lab, "enqueue", "projtasks.double", "[4]", cwd=here)
    assert enqueued.returncode == 0, enqueued.stderr
    producer = python(lab, "import qframe; print(qframe.async_task('projtasks.double', 21))", here)
    assert producer.returncode == 0, producer.stderr
    # spawn: every worker starts a fresh interpreter, which must still find projtasks
    cluster = ClusterProcess(here, {**lab.env, "QFRAME_START_METHOD": "spawn"})
    lab.clusters.append(cluster)
    cluster.wait_running()
    assert lab.client.result(enqueued.stdout.strip(), wait=20) == 8
    assert lab.client.result(producer.stdout.strip(), wait=20) == 42
    assert cluster.stop() == 0
