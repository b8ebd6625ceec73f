"""Every hook fires, in the process its docstring names; hooks, tests and docs stay in step.

One in-process cluster runs with a recording plugin listed in ``plugin_modules``
(``tests/app/recorder_plugin.py``): every cluster process builds its own plugin manager
from the configuration, so the plugin records from each of them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qframe import hookspecs
from qframe.client import Client
from qframe.cluster.cluster import Cluster
from qframe.config import load as load_config
from qframe.plugins import make_plugin_manager
from qframe.testing import wait_until

HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("qframe_"))
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run one cluster with the recorder through successes, failures, retries and a timeout."""
    tmp = tmp_path_factory.mktemp("hooks")
    config = load_config(
        {
            "broker_url": f"sqlite:///{tmp}/q.db",
            "workers": 2,
            "guard_cycle": 0.1,
            "plugins": (),
            "timeout": 1.0,
            "lease": 5.0,
            "max_attempts": 2,
            "plugin_modules": ("recorder_plugin",),
        },
        environ={},
        cwd=tmp,
    )
    log_path = tmp / "hooks.log"
    previous = os.environ.get("QFRAME_TEST_HOOKS_LOG")
    os.environ["QFRAME_TEST_HOOKS_LOG"] = str(log_path)
    pm = make_plugin_manager(config)
    cluster = Cluster(config, pm)
    cluster.start()
    client = Client(config, pm)
    ids = {
        "ok": client.async_task("math.floor", 2.5),
        "raises": client.async_task("math.sqrt", "not a number"),
        "retried": client.async_task("math.sqrt", "again", ack_failure=False),
        "slow": client.async_task("time.sleep", 10),
    }
    for task_id in ids.values():
        assert client.fetch(task_id, wait=30) is not None
    wait_until(lambda: client.fetch(ids["retried"]).attempts == 2, timeout=20)
    wait_until(lambda: "qframe_collect_status" in log_path.read_text(), timeout=10)
    wait_until(lambda: log_path.read_text().count('"role": "worker", "child"') >= 3, timeout=10)
    published = wait_until(lambda: cluster.stat if cluster.stat and cluster.stat.extra else None)
    cluster.stop()
    events = [json.loads(line) for line in log_path.read_text().splitlines()]
    if previous is None:
        del os.environ["QFRAME_TEST_HOOKS_LOG"]
    else:
        os.environ["QFRAME_TEST_HOOKS_LOG"] = previous
    yield {
        "events": events,
        "ids": ids,
        "main": os.getpid(),
        "cluster": cluster,
        "client": client,
        "published": published,
        "pm": pm,
    }


def fired(run: dict[str, Any], hook: str) -> list[dict[str, Any]]:
    return [event for event in run["events"] if event["hook"] == hook]


def test_hook_qframe_configure(run: dict[str, Any]) -> None:
    configured = {e["pid"] for e in fired(run, "qframe_configure")}
    booted = {e["pid"] for e in fired(run, "qframe_process_boot")}
    assert run["main"] in configured and booted <= configured
    for pid in booted:  # before the process did anything else
        first = next(e["hook"] for e in run["events"] if e["pid"] == pid)
        assert first == "qframe_configure"


def test_hook_qframe_execute_task(run: dict[str, Any]) -> None:
    workers = {e["child"] for e in fired(run, "qframe_process_spawned") if e["role"] == "worker"}
    wrapped = fired(run, "qframe_execute_task")
    assert {e["task"] for e in wrapped} == set(run["ids"].values())
    assert {e["pid"] for e in wrapped} <= workers
    assert run["client"].result(run["ids"]["ok"]) == 2  # the wrapper passed the value through


def test_hook_qframe_add_options(tmp_path: Path) -> None:
    selected = {"plugins": (), "plugin_modules": ("qframe_option_plugin",)}
    config = load_config(selected, environ={"QFRAME_TESTOPT_LEVEL": "3"}, cwd=tmp_path)
    assert [option.key for option in config.declared_options] == ["testopt_greeting", "testopt_level"]
    assert vars(config.plugin("testopt")) == {"greeting": "hello", "level": 3}


def test_hook_qframe_cluster_starting(run: dict[str, Any]) -> None:
    assert [e["pid"] for e in fired(run, "qframe_cluster_starting")] == [run["main"]]


def test_hook_qframe_cluster_started(run: dict[str, Any]) -> None:
    [event] = fired(run, "qframe_cluster_started")
    assert event["pid"] == run["main"] and event["cluster_id"] == run["cluster"].cluster_id


def test_hook_qframe_cluster_stopping(run: dict[str, Any]) -> None:
    assert [e["pid"] for e in fired(run, "qframe_cluster_stopping")] == [run["main"]]


def test_hook_qframe_cluster_stopped(run: dict[str, Any]) -> None:
    [event] = fired(run, "qframe_cluster_stopped")
    assert event["has_stopped"] is True
    cluster = run["cluster"]
    assert cluster.start_event.is_set() and cluster.stop_event.is_set()
    assert (cluster.is_running, cluster.is_stopping, cluster.has_stopped) == (False, False, True)
    assert run["events"][-1]["hook"] == "qframe_cluster_stopped"


def test_hook_qframe_process_spawned(run: dict[str, Any]) -> None:
    spawned = fired(run, "qframe_process_spawned")
    roles = sorted(e["role"] for e in spawned)
    assert roles.count("monitor") == 1 and roles.count("pusher") == 1
    assert roles.count("worker") >= 3  # two workers plus the replacement of the timed-out one
    assert len({e["pid"] for e in spawned}) == 1  # the sentinel spawns them all


def test_hook_qframe_process_boot(run: dict[str, Any]) -> None:
    booted = {(e["role"], e["pid"]) for e in fired(run, "qframe_process_boot")}
    spawned = {(e["role"], e["child"]) for e in fired(run, "qframe_process_spawned")}
    assert spawned <= booted
    assert any(role == "sentinel" for role, _ in booted)


def test_process_boot_tells_every_process_its_cluster_id(run: dict[str, Any]) -> None:
    assert {e["cluster_id"] for e in fired(run, "qframe_process_boot")} == {run["cluster"].cluster_id}


def test_hook_qframe_sentinel_tick(run: dict[str, Any]) -> None:
    ticks = fired(run, "qframe_sentinel_tick")
    assert len(ticks) >= 3
    assert {e["status"] for e in ticks} <= {"Idle", "Working"}


def test_hook_qframe_collect_status(run: dict[str, Any]) -> None:
    assert fired(run, "qframe_collect_status")
    # a plain implementation's value and a wrapper=True implementation's both reach the status
    assert run["published"].extra == {"recorder": "on", "wrapped": True}


def test_hook_qframe_pre_enqueue(run: dict[str, Any]) -> None:
    assert {e["task"] for e in fired(run, "qframe_pre_enqueue")} == set(run["ids"].values())
    assert run["client"].fetch(run["ids"]["ok"]).group == "tagged-by-plugin"


def test_hook_qframe_post_enqueue(run: dict[str, Any]) -> None:
    events = fired(run, "qframe_post_enqueue")
    assert {e["task"] for e in events} == set(run["ids"].values())
    assert all(e["pid"] == run["main"] and e["message_id"] for e in events)


def test_hook_qframe_pre_execute(run: dict[str, Any]) -> None:
    attempts = sorted(
        e["attempt"] for e in fired(run, "qframe_pre_execute") if e["task"] == run["ids"]["retried"]
    )
    assert attempts == [1, 2]


def test_headers_written_in_pre_enqueue_reach_every_run_in_the_worker(run: dict[str, Any]) -> None:
    runs = [e for e in fired(run, "qframe_pre_execute") if e["task"] == run["ids"]["retried"]]
    assert [e["headers"] for e in runs] == [{"recorder-origin": f"pid {run['main']}"}] * 2


def test_hook_qframe_post_execute(run: dict[str, Any]) -> None:
    outcomes = {e["task"]: e["success"] for e in fired(run, "qframe_post_execute")}
    assert outcomes[run["ids"]["ok"]] is True and outcomes[run["ids"]["raises"]] is False
    assert run["ids"]["slow"] not in outcomes  # killed before it finished


def test_hook_qframe_task_succeeded(run: dict[str, Any]) -> None:
    assert [e["task"] for e in fired(run, "qframe_task_succeeded")] == [run["ids"]["ok"]]


def test_hook_qframe_task_failed(run: dict[str, Any]) -> None:
    failed = sorted(e["task"] for e in fired(run, "qframe_task_failed"))
    assert failed == sorted([run["ids"]["raises"], run["ids"]["retried"], run["ids"]["slow"]])


def test_hook_qframe_task_timed_out(run: dict[str, Any]) -> None:
    [event] = fired(run, "qframe_task_timed_out")
    assert event["task"] == run["ids"]["slow"] and event["timeout"] == 1.0


def test_hook_qframe_task_retrying(run: dict[str, Any]) -> None:
    [event] = fired(run, "qframe_task_retrying")
    assert event["task"] == run["ids"]["retried"] and event["attempts"] == 1


def test_hook_qframe_task_dead_lettered(run: dict[str, Any]) -> None:
    [event] = fired(run, "qframe_task_dead_lettered")  # the task redelivered on failure, out of attempts
    assert (event["reason"], event["attempts"]) == ("past max_attempts (2)", 2)
    assert event["last_error"].startswith("TypeError: ") and event["queue"] == "default"
    [letter] = run["client"].dead_letters()
    assert letter.message_id == event["message_id"]


def test_hook_qframe_register_commands(run: dict[str, Any]) -> None:
    from qframe.cli import cli

    run["pm"].hook.qframe_register_commands(cli=cli)
    result = CliRunner().invoke(cli, ["hello-plugin"])
    assert result.output == "hello from a plugin\n"


def test_outcome_hooks_run_in_the_monitor(run: dict[str, Any]) -> None:
    monitor = {e["child"] for e in fired(run, "qframe_process_spawned") if e["role"] == "monitor"}
    outcome_pids = {e["pid"] for e in run["events"] if e["hook"].startswith("qframe_task_")}
    assert outcome_pids == monitor


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    assert f"def test_hook_{hook}(" in Path(__file__).read_text()


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook: str) -> None:
    caller = getattr(make_plugin_manager(load_config({"plugins": ()}, environ={})).hook, hook)
    signature = f"{hook}({', '.join(caller.spec.argnames)})"
    assert f"### `{signature}`" in (ROOT / "docs" / "hooks.md").read_text()
    assert re.search(r"\*\*Runs in:\*\*", caller.spec.function.__doc__ or "")
