"""The producer API, without a cluster: enqueue, options, errors, results."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

import qframe
from qframe.builtin.sqlite import SQLiteBroker
from qframe.client import Client
from qframe.config import load as load_config
from qframe.errors import BrokerError, TaskImportError
from qframe.task import Task, resolve


@pytest.fixture
def client(tmp_path: Path) -> Client:
    return Client(load_config({"broker_url": f"sqlite:///{tmp_path}/q.db", "plugins": ()}, environ={}))


def local_function() -> None:
    """A module-level function: importable by name."""


def queued_tasks(client: Client) -> list[Task]:
    _, broker, codec = client._queue(None)
    return [Task.from_dict(codec.decode(m.payload)) for m in broker.dequeue(100)]


def test_async_task_stores_a_signed_task_and_returns_its_id(client: Client) -> None:
    task_id = client.async_task(local_function, 1, x=2, group="g", timeout=5, task_name="named")
    [task] = queued_tasks(client)
    assert task.id == task_id
    assert (task.func, task.args, task.kwargs) == ("test_client.local_function", (1,), {"x": 2})
    assert (task.group, task.timeout, task.name) == ("g", 5, "named")


def test_q_options_leave_every_keyword_to_the_function(client: Client) -> None:
    client.async_task("m.f", hook="m.h", group="arg", q_options={"group": "opt", "save": False})
    [task] = queued_tasks(client)
    assert task.kwargs == {"hook": "m.h", "group": "arg"}
    assert (task.group, task.save, task.hook) == ("opt", False, None)


def test_task_names_are_human_readable(client: Client) -> None:
    client.async_task("m.f")
    [task] = queued_tasks(client)
    assert len(task.label.split("-")) == 4 and task.label.replace("-", "").isalpha()
    assert task.label == Task("m.f", id=task.id).label  # the same id always gives the same name


def test_bulk_enqueue_returns_every_id(client: Client) -> None:
    ids = client.async_tasks("m.f", [(i,) for i in range(250)], group="bulk")
    assert len(set(ids)) == 250
    assert client.queue_size() == 250


def test_functions_workers_cannot_import_are_refused(client: Client) -> None:
    with pytest.raises(TaskImportError, match="define tasks at module level"):
        client.async_task(lambda: None)
    with pytest.raises(TaskImportError, match="not a dotted path"):
        client.async_task("print")
    with pytest.raises(TypeError, match="unknown task options"):
        client.async_task("m.f", q_options={"retries": 3})
    assert client.queue_size() == 0


def test_resolve_explains_what_does_not_import() -> None:
    assert resolve("os.path.join") is __import__("os").path.join
    with pytest.raises(
        TaskImportError, match=r"^task path 'nope.f' does not import: no module named 'nope'$"
    ):
        resolve("nope.f")
    with pytest.raises(TaskImportError, match=r"no 'missing' in module 'os'"):
        resolve("os.missing")


def test_results_wait_then_give_up_without_busy_polling(client: Client) -> None:
    start = time.monotonic()
    assert client.result("0" * 32, wait=0.3) is None
    assert 0.25 <= time.monotonic() - start < 2


def test_enqueue_on_a_broken_broker_raises_and_returns_no_id(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where a directory should be")
    client = Client(
        load_config({"broker_url": f"sqlite:///{tmp_path}/blocked/q.db", "plugins": ()}, environ={})
    )
    with pytest.raises(BrokerError, match="cannot open SQLite database"):
        client.async_task("m.f")


def test_enqueue_to_another_cluster_uses_its_queue(client: Client) -> None:
    client.async_task("m.f", cluster="long")
    broker = SQLiteBroker(client.config.broker_url, "long")
    assert broker.queue_size() == 1
    assert client.queue_size() == 0 and client.queue_size("long") == 1


def test_task_decorator_runs_locally_and_enqueues(monkeypatch: pytest.MonkeyPatch, client: Client) -> None:
    monkeypatch.setattr(qframe.client, "_default", client)

    @qframe.task(group="decorated")
    def double(x: int) -> int:
        return 2 * x

    assert double(4) == 8
    with pytest.raises(TaskImportError):  # defined inside a function: workers could not import it
        double.enqueue(4)


def test_sync_runs_here_saves_the_result_and_reraises(client: Client) -> None:
    task_id = client.async_task("math.floor", 2.5, sync=True, group="sync")
    assert client.result(task_id) == 2
    assert client.queue_size() == 0
    with pytest.raises(ValueError):
        client.async_task("math.sqrt", -1, sync=True, group="sync")
    [ok, failed] = client.fetch_group("sync")
    assert ok.success and not failed.success and "ValueError" in failed.result


def takes_a_timeout_of_its_own(timout: float) -> None:
    """A task function whose own keyword looks like a misspelt option."""


def takes_any_keyword(**kwargs: object) -> None:
    """A task function that takes every keyword."""


def test_a_misspelt_task_option_is_refused_at_enqueue_with_the_closest_name(client: Client) -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'timout' .*did you mean timeout\?"):
        client.async_task(local_function, timout=5)
    with pytest.raises(TypeError, match=r"unknown task options: \['grup'\] \(did you mean grup -> group\?\)"):
        client.async_tasks(local_function, [()], grup="g")
    assert client.queue_size() == 0
    client.async_task(takes_a_timeout_of_its_own, timout=5)
    client.async_task(takes_any_keyword, timout=5)
    client.async_task("elsewhere.func", timout=5)  # a path is not imported here: the worker will tell
    assert [task.kwargs for task in queued_tasks(client)] == [{"timout": 5}] * 3


def test_a_producer_warns_once_when_it_would_create_a_new_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def producer(name: str) -> Client:
        return Client(load_config({"broker_url": f"sqlite:///{tmp_path}/{name}", "plugins": ()}, environ={}))

    with caplog.at_level(logging.WARNING, logger="qframe"):
        producer("new.db").async_task("m.f")
        producer("new.db").async_task("m.f")
        producer("results-first.db").fetch("x")  # the store opens the broker's file
        SQLiteBroker(f"sqlite:///{tmp_path}/used.db", "default").close()
        producer("used.db").fetch("x")
    assert [r.getMessage() for r in caplog.records] == [
        f"creating a new SQLite database {tmp_path}/{name}: no cluster has used it yet, so tasks sent "
        "to it wait until a cluster uses the same file (see broker_url)"
        for name in ("new.db", "results-first.db")
    ]


def test_a_producer_in_a_subdirectory_uses_the_projects_database(tmp_path: Path) -> None:
    (tmp_path / "qframe.toml").write_text("plugins = []\n")
    (tmp_path / "sub").mkdir()
    Client(load_config(environ={}, cwd=tmp_path / "sub")).async_task("m.f")
    assert Client(load_config(environ={}, cwd=tmp_path)).queue_size() == 1
    assert {"qframe.db", "qframe.db.key"} <= {path.name for path in tmp_path.iterdir()}
    assert list((tmp_path / "sub").iterdir()) == []
