"""Store roles: signed cluster statuses, the core's own dead letters, StoreError, the store choice."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import APP, Lab
from qframe_test_brokers import NoDeadLetters, ResultsOnly

from qframe.builtin.sqlite import SQLiteBroker, SQLiteStore
from qframe.cluster.deadletters import list_dead_letters, quarantine
from qframe.cluster.stat import STATUS_SALT, Stat, StatusWriter, status_codec
from qframe.config import Config
from qframe.config import load as load_config
from qframe.drivers import make_store, store_choice
from qframe.errors import BrokerError, ConfigError, StoreError
from qframe.serialize import Codec
from qframe.task import Task
from qframe.testing import wait_until

pytestmark = pytest.mark.timeout(120)

TEST_BROKER = "qframe_test_brokers:NoDeadLetters"


def config(**options: object) -> Config:
    return load_config(options, environ={}, cwd=Path("/"))


def qf(lab: Lab, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qframe", *args],
        cwd=APP,
        env={**os.environ, **lab.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- signed cluster statuses ---------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(f"sqlite:///{tmp_path}/qframe.db")


def publish(store: SQLiteStore, key: str, tmp_path: Path) -> Stat:
    stat = Stat("c" * 32, "default", "host", 1, status="Idle", extra={"path": tmp_path})
    writer = StatusWriter(config(broker_url=store.url), [key])
    writer.write(stat, ttl=30)
    writer.close()
    return stat


def test_a_status_reads_back_under_the_key_it_was_signed_with(store: SQLiteStore, tmp_path: Path) -> None:
    publish(store, "key-a", tmp_path)
    [stat] = Stat.all(store, ["key-a"])
    assert (stat.cluster_id, stat.status, stat.extra) == ("c" * 32, "Idle", {"path": str(tmp_path)})
    assert Stat.all(store, ["newer", "key-a"]) == [stat]  # a fallback key still reads it


def test_a_reader_with_another_key_sees_no_status(store: SQLiteStore, tmp_path: Path) -> None:
    publish(store, "key-a", tmp_path)
    assert Stat.all(store, ["key-b"]) == []


def test_a_tampered_status_is_ignored_and_logged_at_debug(
    store: SQLiteStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publish(store, "key-a", tmp_path)
    [signed] = store.statuses()
    tampered = signed.replace(b'"Idle"', b'"Working"')
    assert tampered != signed
    store.set_status("c" * 32, tampered, ttl=30)
    with caplog.at_level(logging.DEBUG, logger="qframe"):
        assert Stat.all(store, ["key-a"]) == []
    assert "ignored a cluster status that does not verify: bad signature" in caplog.text


def test_a_forged_or_pickled_status_is_ignored_beside_a_genuine_one(
    store: SQLiteStore, tmp_path: Path
) -> None:
    publish(store, "key-a", tmp_path)
    fields = dataclasses.asdict(Stat("f" * 32, "default", "host", 2))
    store.set_status("forged", Codec(["key-b"], STATUS_SALT, "json").encode(fields), ttl=30)
    store.set_status("pickled", Codec(["key-a"], STATUS_SALT, "pickle").encode(fields), ttl=30)
    store.set_status("not-a-stat", status_codec(["key-a"]).encode({"nope": 1}), ttl=30)
    store.set_status("raw", json.dumps(fields).encode(), ttl=30)
    assert [stat.cluster_id for stat in Stat.all(store, ["key-a"])] == ["c" * 32]


def test_a_store_without_the_status_role_publishes_nothing_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = StatusWriter(config(store="qframe_test_brokers:ResultsOnly", secret_key="k"), ["k"])
    writer.write(Stat("c" * 32, "default", "host", 1), ttl=30)
    assert (
        "store ResultsOnly keeps no cluster statuses: qframe info will not list this cluster" in caplog.text
    )
    assert Stat.all(ResultsOnly(None), ["k"]) == []


def test_qframe_info_shows_a_running_cluster_only_to_readers_with_its_key(lab: Lab) -> None:
    cluster = lab.cluster()
    wait_until(lambda: json.loads(qf(lab, "info", "--json").stdout)["clusters"], timeout=20)
    [shown] = json.loads(qf(lab, "info", "--json").stdout)["clusters"]
    assert shown["status"] in ("Idle", "Working") and len(shown["workers"]) == 2
    assert shown["pid"] == cluster.process.pid
    table = qf(lab, "info")
    assert table.returncode == 0 and shown["label"] in table.stdout
    stranger = qf(lab, "info", "--json", QFRAME_SECRET_KEY="another key")
    assert stranger.returncode == 0, stranger.stderr
    assert json.loads(stranger.stdout)["clusters"] == []
    assert cluster.stop() == 0


# -- dead letters ----------------------------------------------------------------------------


def test_a_broker_without_dead_letters_has_them_kept_in_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"
    broker, store = NoDeadLetters(url, "q"), SQLiteStore(url)
    message_id = broker.enqueue(b"tampered")
    [message] = broker.dequeue(1)
    quarantine(broker, store, message, "bad signature")
    assert (broker.queue_size(), broker.lock_size()) == (0, 0)  # acknowledged on the broker
    assert [letter[:3] for letter in store.dead_letters("q")] == [(message_id, "bad signature", b"tampered")]
    assert [x[:3] for x in list_dead_letters(broker, store)] == [(message_id, "bad signature", b"tampered")]
    assert SQLiteBroker(url, "q").dead_letters() == []  # not in the broker's own table


def test_a_broker_with_dead_letters_keeps_them_itself(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"
    broker, store = SQLiteBroker(url, "q"), SQLiteStore(url)
    message_id = broker.enqueue(b"tampered")
    [message] = broker.dequeue(1)
    quarantine(broker, store, message, "bad signature")
    assert [letter[:3] for letter in broker.dead_letters()] == [(message_id, "bad signature", b"tampered")]
    assert store.dead_letters("q") == []
    assert list_dead_letters(broker, functools.partial(SQLiteStore, url)) == broker.dead_letters()


def test_a_store_opened_for_dead_letters_is_closed_after_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"
    broker, opened = NoDeadLetters(url, "q"), []

    def open_store() -> SQLiteStore:
        opened.append(SQLiteStore(url))
        return opened[-1]

    broker.enqueue(b"x")
    [message] = broker.dequeue(1)
    quarantine(broker, open_store, message, "bad")
    assert [letter.message_id for letter in list_dead_letters(broker, open_store)] == [message.message_id]
    for store in opened:
        with pytest.raises(StoreError, match="Cannot operate on a closed database"):
            store.get("any")


def test_a_store_without_the_dead_letter_role_is_refused_for_such_a_broker(tmp_path: Path) -> None:
    options = {"broker": TEST_BROKER, "store": "qframe_test_brokers:ResultsOnly", "secret_key": "k"}
    with pytest.raises(ConfigError) as error:
        make_store(config(**options))
    assert str(error.value) == (
        f"broker '{TEST_BROKER}' keeps no dead letters and store 'qframe_test_brokers:ResultsOnly' cannot "
        "keep them either: choose a store that fills the dead-letter role (sqlite and redis do)"
    )
    make_store(config(**{**options, "broker": "sqlite", "broker_url": f"sqlite:///{tmp_path}/q.db"}))


def test_tampered_and_undecodable_payloads_end_in_the_stores_dead_letters(lab: Lab) -> None:
    lab.configure(broker=TEST_BROKER, store="sqlite")
    url = lab.env["QFRAME_BROKER_URL"]
    broker = NoDeadLetters(url, "default")
    codec = lab.client._queue(None)[2]  # the queue's real codec: a valid signature on a bad body
    envelope = bytearray(codec.encode(Task("qframe.testing.tasks.inc", (1000,)).to_dict()))
    envelope[-3] ^= 0xFF
    tampered = broker.enqueue(bytes(envelope))
    undecodable = broker.enqueue(codec.encode({"not": "a task"}))
    ids = [lab.client.async_task("qframe.testing.tasks.inc", i) for i in range(5)]
    cluster = lab.cluster()
    assert [lab.client.result(i, wait=20) for i in ids] == [1, 2, 3, 4, 5]
    store = SQLiteStore(url)
    letters = wait_until(lambda: len(store.dead_letters("default")) == 2 and store.dead_letters("default"))
    reasons = {letter.message_id: letter.reason for letter in letters}
    assert reasons[tampered].startswith("bad signature")
    assert reasons[undecodable].startswith("undecodable payload")
    assert SQLiteBroker(url, "default").dead_letters() == []
    assert (broker.queue_size(), broker.lock_size()) == (0, 0)
    listing = qf(lab, "dead-letters")
    assert listing.returncode == 0, listing.stderr
    assert sorted(line.split("\t")[0] for line in listing.stdout.splitlines()) == sorted(
        [tampered, undecodable]
    )
    assert json.loads(qf(lab, "info", "--json").stdout)["dead_letters"] == 2
    assert cluster.stop() == 0


# -- StoreError ------------------------------------------------------------------------------


def test_a_store_at_an_unusable_location_raises_store_error_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where a directory should be")
    with pytest.raises(StoreError) as error:
        SQLiteStore(f"sqlite:///{tmp_path}/blocked/results.db")
    assert str(error.value).startswith(f"cannot open SQLite database {tmp_path}/blocked/results.db: ")
    assert "\n" not in str(error.value)
    with pytest.raises(StoreError, match="the sqlite driver cannot use 'redis://x'"):
        SQLiteStore("redis://x")
    with pytest.raises(BrokerError, match="cannot open SQLite database"):  # the broker keeps its own error
        SQLiteBroker(f"sqlite:///{tmp_path}/blocked/q.db", "q")


def test_a_store_error_reaches_the_command_line_as_one_line(lab: Lab) -> None:
    (lab.tmp / "blocked").write_text("a file where a directory should be")
    done = qf(
        lab, "result", "0" * 32, QFRAME_STORE="sqlite", QFRAME_STORE_URL=f"sqlite:///{lab.tmp}/blocked/r.db"
    )
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"qframe: error: cannot open SQLite database {lab.tmp}/blocked/r.db: ")


# -- no silent local results -----------------------------------------------------------------


def test_the_sqlite_default_needs_no_configuration(tmp_path: Path) -> None:
    assert store_choice(config()) == ("sqlite", None)
    url = f"sqlite:///{tmp_path}/q.db"
    assert store_choice(config(broker_url=url)) == ("sqlite", url)
    assert store_choice(config(broker_url=url, store="sqlite")) == ("sqlite", url)  # one file for both
    assert isinstance(make_store(config(broker_url=url)), SQLiteStore)


def test_a_broker_with_no_store_of_its_own_must_be_given_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        store_choice(config(broker=TEST_BROKER, secret_key="k"))
    assert str(error.value).startswith(
        f"broker '{TEST_BROKER}' keeps no results of its own: set store (QFRAME_STORE) to one of the "
        "installed stores: "
    )
    assert "sqlite" in str(error.value) and "\n" not in str(error.value)
    url = f"sqlite:///{tmp_path}/q.db"
    assert store_choice(config(broker=TEST_BROKER, broker_url=url, store="sqlite")) == ("sqlite", url)
    other = f"sqlite:///{tmp_path}/results.db"
    assert store_choice(config(broker=TEST_BROKER, store="sqlite", store_url=other)) == ("sqlite", other)


def test_qframe_cluster_refuses_a_broker_without_a_store_in_one_line(lab: Lab) -> None:
    done = qf(lab, "cluster", "--broker", TEST_BROKER)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"qframe: error: broker '{TEST_BROKER}' keeps no results of its own: set store")
