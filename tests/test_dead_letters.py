"""Dead letters on the SQLite default: which tasks become one, and ``qframe dlq`` / the Python API.

The shared cluster test (a task past max_attempts, then ``qframe dlq requeue``) is in
:class:`qframe.testing.task_api.TaskApiContract`; these are the rest.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import APP, Lab

import qframe
from qframe.builtin.sqlite import SQLiteBroker, SQLiteStore
from qframe.client import Client
from qframe.errors import BrokerError, InvalidArgument
from qframe.letters import DeadLetterQueue, NotRequeueable
from qframe.serialize import Codec
from qframe.stores.base import DeadLetter
from qframe.task import Task
from qframe.testing import wait_until

TASKS = "qframe.testing.tasks"


def qf(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``qframe ARGS`` with the lab's settings."""
    return subprocess.run(
        [sys.executable, "-m", "qframe", *args],
        cwd=APP,
        env={**os.environ, **lab.env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def broker_of(lab: Lab) -> SQLiteBroker:
    return SQLiteBroker(lab.env["QFRAME_BROKER_URL"], "default")


def codec_of(lab: Lab) -> Codec:
    return lab.client._queue(None)[2]


def dead_letter(lab: Lab, payload: bytes, reason: str = "past max_attempts (3)") -> str:
    """Put ``payload`` straight into the queue's dead letters; return its message id."""
    broker = broker_of(lab)
    message_id = broker.enqueue(payload)
    [message] = broker.dequeue(1)
    broker.quarantine(message.ack_id, reason, 3, "ValueError: no luck")
    return message_id


def dead_task(lab: Lab, *args: object, **options: object) -> tuple[Task, str]:
    """A signed task of ``inc`` moved to the dead letters; the task and its message id."""
    task = Task(f"{TASKS}.inc", args or (1,), **options)  # type: ignore[arg-type]
    return task, dead_letter(lab, codec_of(lab).encode(task.to_dict()))


def queued_tasks(lab: Lab) -> list[Task]:
    broker = broker_of(lab)
    return [Task.from_dict(codec_of(lab).decode(m.payload)) for m in broker.dequeue(100)]


# -- which tasks become dead letters ----------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_task_whose_worker_dies_on_each_attempt_is_a_dead_letter_and_a_plain_failure_is_not(
    lab: Lab,
) -> None:
    cluster = lab.cluster()
    poison = lab.client.async_task(f"{TASKS}.suicide", "poison", max_attempts=1)
    plain = lab.client.async_task(f"{TASKS}.boom", "plain")
    [letter] = wait_until(lambda: lab.client.dead_letters(), timeout=60)
    assert (letter.reason, letter.attempts) == ("past max_attempts (1)", 1)
    assert letter.last_error == "its worker died on each of 1 attempts (max_attempts=1)"
    assert Task.from_dict(codec_of(lab).decode(letter.payload)).id == poison
    failed = lab.client.fetch(poison, wait=30)
    assert failed is not None and not failed.success  # the failure result is there too
    boom = lab.client.fetch(plain, wait=30)
    assert boom is not None and not boom.success
    assert cluster.stop() == 0
    assert len(lab.client.dead_letters()) == 1  # the plain failure is only a failure record


# -- requeue ------------------------------------------------------------------------------------


def test_requeue_enqueues_the_task_with_its_id_and_fresh_retries_then_removes_the_letter(lab: Lab) -> None:
    task, message_id = dead_task(lab, 5, retries=2, name="five")
    assert lab.client.requeue([message_id]) == 1
    [again] = queued_tasks(lab)
    assert (again.id, again.args, again.name, again.retries) == (task.id, (5,), "five", 0)
    assert lab.client.dead_letters() == []


def test_a_letter_is_removed_only_after_its_task_was_enqueued(lab: Lab) -> None:
    _, message_id = dead_task(lab)

    def broken_enqueue(task: Task) -> str:
        raise BrokerError("broker down")

    client = lab.client
    config, broker, codec = client._queue(None)
    letters = DeadLetterQueue(broker, client._store_for(config), codec, broken_enqueue)
    with pytest.raises(BrokerError):
        letters.requeue(letters.choose([message_id]))
    assert [letter.message_id for letter in client.dead_letters()] == [message_id]


def test_requeue_by_task_name_or_function_picks_only_those(lab: Lab) -> None:
    dead_task(lab, 1, name="mine")
    dead_task(lab, 2, name="other")
    assert lab.client.requeue(name="mine") == 1
    assert [t.args for t in queued_tasks(lab)] == [(1,)]
    assert lab.client.requeue(name=f"{TASKS}.inc") == 1  # the function path matches too
    assert lab.client.dead_letters() == []


def test_a_letter_that_fails_its_signature_cannot_be_requeued_by_id(lab: Lab) -> None:
    forged = dead_letter(lab, Codec(["another key"], "default").encode(Task(f"{TASKS}.inc").to_dict()))
    with pytest.raises(NotRequeueable, match=f"^dead letter {forged} cannot be requeued: its payload fails"):
        lab.client.requeue([forged])
    done = qf(lab, "dlq", "requeue", forged)
    assert done.returncode == 2
    assert done.stderr.startswith(f"qframe: error: dead letter {forged} cannot be requeued: ")
    assert len(done.stderr.splitlines()) == 1
    assert broker_of(lab).queue_size() == 0 and len(lab.client.dead_letters()) == 1


def test_requeue_all_skips_undecodable_letters_and_counts_them(lab: Lab) -> None:
    garbage = dead_letter(lab, b"not even a payload", reason="bad signature")
    dead_task(lab, 7)
    done = qf(lab, "dlq", "requeue", "--all")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "requeued 1 dead letters of queue 'default'",
        "skipped 1 whose payload does not verify or decode (see 'qframe dlq show')",
    ]
    assert [t.args for t in queued_tasks(lab)] == [(7,)]
    assert [letter.message_id for letter in lab.client.dead_letters()] == [garbage]


def test_requeue_many_shows_a_progress_bar_and_requeues_them_all(lab: Lab) -> None:
    for i in range(25):
        dead_task(lab, i)
    done = qf(lab, "dlq", "requeue", "--all")
    assert done.returncode == 0, done.stderr
    assert "requeueing" in done.stderr and "100%" in done.stderr
    assert done.stdout == "requeued 25 dead letters of queue 'default'\n"
    assert sorted(t.args[0] for t in queued_tasks(lab)) == list(range(25))


def test_the_module_level_api_uses_the_default_client(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    _, message_id = dead_task(lab)
    monkeypatch.setattr("qframe.client._default", lab.client)
    assert [letter.message_id for letter in qframe.dead_letters()] == [message_id]
    assert qframe.requeue(all=True) == 1 and qframe.dead_letters() == []


def test_requeue_needs_exactly_one_of_ids_name_and_all(lab: Lab) -> None:
    with pytest.raises(InvalidArgument, match="exactly one"):
        lab.client.requeue()
    with pytest.raises(InvalidArgument, match="exactly one"):
        lab.client.requeue(["1"], all=True)
    usage = qf(lab, "dlq", "requeue")
    assert usage.returncode == 2 and "give exactly one of ID..., --name NAME or --all" in usage.stderr
    usage = qf(lab, "dlq", "purge", "1", "--all")
    assert usage.returncode == 2 and "give exactly one of ID... or --all" in usage.stderr


def test_an_unknown_id_is_refused_in_one_line_naming_it(lab: Lab) -> None:
    dead_task(lab)
    done = qf(lab, "dlq", "show", "12345")
    assert done.returncode == 2
    assert done.stderr == "qframe: error: no dead letter 12345 in queue 'default'\n"


# -- list, show, purge --------------------------------------------------------------------------


def test_dlq_list_prints_one_line_per_letter_and_json_with_every_field(lab: Lab) -> None:
    task, message_id = dead_task(lab, 3)
    [line] = qf(lab, "dlq", "list").stdout.splitlines()
    fields = line.split("\t")
    assert (fields[0], fields[2], fields[3], fields[5]) == (
        message_id,
        f"{TASKS}.inc",
        "3 attempts",
        "past max_attempts (3)",
    )
    [row] = json.loads(qf(lab, "dlq", "list", "--json").stdout)
    assert row["id"] == message_id and row["attempts"] == 3 and row["last_error"] == "ValueError: no luck"
    assert row["task"]["id"] == task.id and row["task"]["args"] == "(3,)" and row["dead_at"] > 0
    assert qf(lab, "dead-letters").stdout == qf(lab, "dlq", "list").stdout  # the old name still works


def test_dlq_show_prints_the_letter_and_its_task(lab: Lab) -> None:
    task, message_id = dead_task(lab, 4)
    shown = qf(lab, "dlq", "show", message_id).stdout.splitlines()
    assert f"id: {message_id}" in shown and "last_error: ValueError: no luck" in shown
    assert f"task.id: {task.id}" in shown and f"task.func: {TASKS}.inc" in shown
    data = json.loads(qf(lab, "dlq", "show", message_id, "--json").stdout)
    assert data["reason"] == "past max_attempts (3)" and data["task"]["name"] == task.label


def test_dlq_purge_removes_the_named_letters_or_all(lab: Lab) -> None:
    ids = [dead_task(lab, i)[1] for i in range(3)]
    assert qf(lab, "dlq", "purge", ids[0]).stdout == "purged 1 dead letters of queue 'default'\n"
    assert [letter.message_id for letter in lab.client.dead_letters()] == ids[1:]
    assert qf(lab, "dlq", "purge", "--all").stdout == "purged 2 dead letters of queue 'default'\n"
    assert lab.client.dead_letters() == [] and broker_of(lab).queue_size() == 0


def test_dlq_commands_pick_the_queue_with_cluster(lab: Lab) -> None:
    other = Client(lab.client.config.for_cluster("emails"))
    _, broker, codec = other._queue(None)
    broker.enqueue(codec.encode(Task(f"{TASKS}.inc", (1,), cluster="emails").to_dict()))
    [message] = broker.dequeue(1)
    broker.quarantine(message.ack_id, "past max_attempts (1)", 1)
    assert qf(lab, "dlq", "list").stdout == ""
    assert qf(lab, "dlq", "list", "--cluster", "emails").stdout.startswith(message.message_id)
    assert "requeued 1" in qf(lab, "dlq", "requeue", "--all", "--cluster", "emails").stdout
    assert broker.queue_size() == 1


# -- stored shape ---------------------------------------------------------------------------------


def test_a_sqlite_file_of_an_older_version_gets_the_new_dead_letter_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE qframe_dead (id INTEGER PRIMARY KEY, queue TEXT NOT NULL, "
            "payload BLOB NOT NULL, reason TEXT NOT NULL, created REAL NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE qframe_quarantine (queue TEXT NOT NULL, message_id TEXT NOT NULL, "
            "reason TEXT NOT NULL, payload BLOB NOT NULL, created REAL NOT NULL, "
            "PRIMARY KEY (queue, message_id))"
        )
        conn.execute("INSERT INTO qframe_dead VALUES (7, 'q', x'00', 'bad signature', 1.0)")
        conn.execute("INSERT INTO qframe_quarantine VALUES ('q', 'm', 'bad signature', x'01', 2.0)")
    url = f"sqlite:///{path}"
    assert SQLiteBroker(url, "q").dead_letters() == [DeadLetter("7", "bad signature", b"\x00", 0, "", 1.0)]
    store = SQLiteStore(url)
    assert store.dead_letters("q") == [DeadLetter("m", "bad signature", b"\x01", 0, "", 2.0)]
    store.quarantine("q", "m2", "past max_attempts (2)", b"p", 2, "boom")
    assert store.dead_letters("q")[1][:5] == ("m2", "past max_attempts (2)", b"p", 2, "boom")
