"""Results: ``cached=``, ``save_limit_per``, results by task name, the record's helpers, the hook runner."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest
from conftest import Lab

from qframe.asynctask import AsyncTask
from qframe.builtin.sqlite import SQLiteStore
from qframe.chain import Chain
from qframe.client import Client
from qframe.cluster.collate import collate
from qframe.cluster.hookrunner import HookRunner
from qframe.cluster.outcome import Outcome
from qframe.config import load as load_config
from qframe.drivers import make_store
from qframe.errors import ConfigError, InvalidArgument
from qframe.iterate import element_id
from qframe.task import Task, TaskResult
from qframe.testing.contracts import make_meta, wait_until

TASKS = "qframe.testing.tasks"


def test_result_and_fetch_accept_a_task_name_the_most_recent_one(lab: Lab) -> None:
    client: Client = lab.client
    client.async_task("math.floor", 1.5, task_name="nightly", sync=True)
    client.async_task("math.floor", 2.5, task_name="nightly", sync=True)
    assert client.result("nightly") == 2
    record = client.fetch("nightly")
    assert record is not None and record.name == "nightly" and record.result == 2
    assert client.result("no-such-name") is None


def test_a_task_id_wins_over_a_task_name(lab: Lab) -> None:
    client: Client = lab.client
    by_id = client.async_task("math.floor", 1.5, sync=True)
    client.async_task("math.floor", 9.5, task_name=by_id, sync=True)
    assert client.result(by_id) == 1


def test_waiting_for_a_name_returns_once_a_result_of_that_name_is_saved(lab: Lab) -> None:
    client: Client = lab.client
    timer = threading.Timer(0.3, lambda: client.async_task("math.floor", 3.5, task_name="late", sync=True))
    timer.start()
    try:
        assert client.result("late", wait=30) == 3
    finally:
        timer.join()


def test_the_record_knows_its_hook_and_reaches_its_group(lab: Lab) -> None:
    client: Client = lab.client
    hook = f"{TASKS}.note_hook"
    first = client.async_task("math.floor", 1.5, group="trio", hook=hook, sync=True)
    client.async_task("math.floor", 2.5, group="trio", sync=True)
    with pytest.raises(ValueError, match="math domain error"):
        client.async_task("math.sqrt", -1, group="trio", sync=True)
    record = client.fetch(first)
    assert record is not None and record.hook == hook
    assert record.group_result() == [1, 2]
    assert len(record.group_result(failures=True) or []) == 3
    assert (record.group_count(), record.group_count(failures=True)) == (2, 1)
    assert record.group_delete() == 3
    assert record.group_result() == [] and client.result(first) == 1  # ungrouped, still kept
    assert [row[1] for row in lab.runs("hook")] == [record.name]  # the hook got the record too


def test_the_group_helpers_of_a_record_without_a_group_are_none(lab: Lab) -> None:
    record = lab.client.fetch(lab.client.async_task("math.floor", 1.5, sync=True))
    assert record is not None and record.hook is None
    assert (record.group_result(), record.group_count(), record.group_delete()) == (None, None, None)


def test_the_helpers_of_a_record_fetched_by_a_client_use_that_clients_store(lab: Lab) -> None:
    record = lab.client.fetch(lab.client.async_task("math.floor", 1.5, group="mine", sync=True))
    assert record is not None and record.client is lab.client
    assert "client" not in record.to_dict()  # never serialized with the record


def test_cached_true_keeps_the_result_for_the_clusters_cache_ttl(lab: Lab) -> None:
    lab.configure(cache_ttl=42, clusters='{"short": {"cache_ttl": 5}}')
    client: Client = lab.client
    assert client._make_task("m.f", (), {"cached": True})[0].cached == 42
    assert client._make_task("m.f", (), {"cached": True, "cluster": "short"})[0].cached == 5
    assert client._make_task("m.f", (), {"cached": 2.5})[0].cached == 2.5
    assert client._make_task("m.f", (), {"cached": False})[0].cached == 0
    assert client._make_task("m.f", (), {})[0].cached == 0


@pytest.mark.parametrize("cached", [0, -1, "5", [3]])
def test_a_bad_cached_option_is_refused_in_one_line(lab: Lab, cached: object) -> None:
    with pytest.raises(
        InvalidArgument, match=r"^cached must be True, False or a number of seconds greater than 0"
    ):
        lab.client.async_task("math.floor", 1.5, cached=cached)
    assert lab.client.queue_size() == 0


def test_a_cached_result_run_here_expires_and_is_kept_before(lab: Lab) -> None:
    client: Client = lab.client
    task_id = client.async_task("math.floor", 1.5, cached=1, save=False, sync=True)
    assert client.result(task_id) == 1
    wait_until(lambda: client.fetch(task_id) is None, timeout=30)


def test_async_task_and_chain_pass_cached_on(lab: Lab) -> None:
    task = AsyncTask("math.floor", 1.5, client=lab.client)
    task.cached = 7
    assert task.kwargs == {"cached": 7}
    chain = Chain([("math.floor", (1.5,)), ("math.floor", (2.5,))], cached=3, client=lab.client)
    assert chain._task(lab.client, chain.links[0]).cached == 3


def test_save_limit_per_reaches_the_store_and_a_bad_value_is_a_config_error(tmp_path: Path) -> None:
    config = load_config(
        environ={"QFRAME_SAVE_LIMIT": "5", "QFRAME_SAVE_LIMIT_PER": "func", "QFRAME_PLUGINS": ""},
        cwd=tmp_path,
    )
    store = make_store(config.replace(broker_url=f"sqlite:///{tmp_path}/q.db"))
    assert (store.save_limit, store.save_limit_per) == (5, "func")
    store.close()
    with pytest.raises(ConfigError, match="option 'save_limit_per' must be 'group', 'name' or 'func'"):
        load_config(environ={"QFRAME_SAVE_LIMIT_PER": "queue", "QFRAME_PLUGINS": ""}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="option 'cache_ttl' must be greater than 0, got 0"):
        load_config(environ={"QFRAME_CACHE_TTL": "0", "QFRAME_PLUGINS": ""}, cwd=tmp_path)


def test_a_sqlite_file_made_before_expires_existed_is_upgraded_and_keeps_its_results(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE qframe_results (id TEXT PRIMARY KEY, name TEXT NOT NULL, func TEXT NOT NULL, "
            "grp TEXT, success INTEGER NOT NULL, started REAL NOT NULL, stopped REAL NOT NULL, "
            "attempts INTEGER NOT NULL, cluster TEXT NOT NULL, blob BLOB NOT NULL)"
        )
        conn.execute(
            "INSERT INTO qframe_results VALUES ('old', 'n', 'f', NULL, 1, 0, 1, 1, 'default', x'6f6c64')"
        )
    conn.close()
    store = SQLiteStore(f"sqlite:///{path}")
    try:
        assert store.get("old") == b"old" and store.get_by_name("n") == b"old"
        meta = make_meta(expires=1.0)  # expired long ago
        store.save(meta, b"gone")
        assert store.get(meta.id) is None
    finally:
        store.close()


def outcome(tag: str) -> Outcome:
    return Outcome(tag, "ack", blob=b"x")


def test_the_hook_runner_calls_hooks_in_order_and_drains_at_close() -> None:
    called: list[str] = []
    runner = HookRunner("test-monitor", lambda o: called.append(o.ack_id))
    for tag in ("a", "b", "c"):
        runner.submit(outcome(tag))
    runner.close(10.0)
    assert called == ["a", "b", "c"] and not runner.thread.is_alive()


def test_the_hook_runner_survives_a_raising_call_and_reports_hooks_left_at_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release, called = threading.Event(), []

    def call(o: Outcome) -> None:
        if o.ack_id == "raises":
            raise RuntimeError("broken")
        release.wait(30)
        called.append(o.ack_id)

    runner = HookRunner("test-monitor", call)
    with caplog.at_level(logging.ERROR, logger="qframe"):
        runner.submit(outcome("raises"))
        runner.submit(outcome("stuck"))
        runner.submit(outcome("waiting"))
        runner.close(0.3)
    release.set()
    runner.thread.join(10)
    messages = [r.getMessage() for r in caplog.records]
    assert "test-monitor: the hooks of delivery raises failed: RuntimeError: broken" in messages
    assert any(m.startswith("test-monitor stopped with the hooks of about") for m in messages), messages
    assert called == ["stuck", "waiting"]  # the thread outlived the raising call


def test_the_collated_record_of_a_cached_iterator_expires_too(lab: Lab) -> None:
    client: Client = lab.client
    iter_id = "ef" * 16
    for index in range(2):
        task = Task(f"{TASKS}.inc", (index,), id=element_id(iter_id, index), group=iter_id, iter_count=2)
        record = TaskResult.of(task, index + 1, True, started=0.0, attempts=1)
        client.store.save(record.meta, client._results().encode(record.to_dict()))
    assert collate(client.store, client._results(), iter_id, 2, cached=1.0)
    assert client.result(iter_id) == [1, 2]
    wait_until(lambda: client.fetch(iter_id) is None, timeout=30)
