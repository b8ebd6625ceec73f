"""``FaultContract``: real clusters on a broker, faults injected, one invariant checked after each.

A broker plugin subclasses :class:`FaultContract` and provides one fixture,
``fault_target``: a factory ``make(own_server) -> FaultTarget`` giving the ``QFRAME_*``
settings that run a cluster on the broker, and the :class:`~qframe.testing.ServerProcess`
it runs on (None for an embedded broker). ``own_server=True`` asks for a server no other
test uses, because the scenario will kill it::

    class TestRedisFaults(FaultContract):
        @pytest.fixture
        def fault_target(self, redis_server, own_redis_server):
            def make(own_server):
                server = own_redis_server() if own_server else redis_server
                return FaultTarget({"QFRAME_BROKER": "redis", "QFRAME_BROKER_URL": server.url}, server)
            return make

The scenarios are F1-F19 of ``docs/reliability.md`` (numbers from the brokers research).
Each runs real ``qframe cluster`` processes, and each ends by checking the invariant with
the runs ledger (:mod:`qframe.testing.ledger`): every enqueued task ends with exactly
one final record (success, failure or dead letter), none is lost, no success is
overwritten. A scenario the broker cannot run is skipped, naming the capability flag or
the missing server.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qframe.errors import BrokerError
from qframe.serialize import Codec
from qframe.stores.delays import DelayStore
from qframe.task import Task
from qframe.testing.contracts import assert_size, wait_until
from qframe.testing.lab import FaultLab, TargetFactory
from qframe.testing.tasks import record

TASKS = "qframe.testing.tasks"
#: How long a scenario waits for its tasks to reach their final records.
SETTLE = 60.0


class Exploit:
    """Pickles into a call of :func:`qframe.testing.tasks.record`: unpickling it leaves a ``pwned`` line."""

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (record, ("pwned", "a payload that should have been refused was unpickled"))


def sigkill_a_busy_worker(lab: FaultLab) -> None:
    """SIGKILL the worker running a task: it runs again once and succeeds, the others run once."""
    cluster = lab.cluster()
    victim = lab.enqueue(f"{TASKS}.sleepy", "victim", 1.5)
    others = lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(10)])
    [row] = recorded(lab, "sleepy")
    os.kill(int(row[-1]), signal.SIGKILL)
    settle(lab)
    record = lab.client.fetch(victim)
    assert record is not None and record.success and record.attempts == 2
    assert [lab.client.result(i) for i in others] == list(range(1, 11))
    cluster.wait_for(r"reincarnated worker Process-\w+ after death")
    lab.assert_invariant()


def settle(lab: FaultLab, timeout: float = SETTLE) -> None:
    """Wait until every task the lab enqueued has a final record (a result or a dead letter)."""
    deadline = time.monotonic() + timeout
    while lab.finished() < len(lab.task_ids):
        if time.monotonic() > deadline:
            missing = len(lab.task_ids) - lab.finished()
            raise AssertionError(f"{missing} tasks have no final record after {timeout} s")
        time.sleep(0.05)


def recorded(lab: FaultLab, kind: str, count: int = 1, timeout: float = 30.0) -> list[list[str]]:
    """Wait until tasks recorded ``count`` runs of ``kind``; return those rows (the last field is the pid)."""
    return list(wait_until(lambda: (rows := lab.ledger().kind(kind))[count - 1 :] and rows, timeout=timeout))


@pytest.mark.timeout(180)
class FaultContract:
    """Fault-injection scenarios a broker driver must pass on real clusters."""

    @pytest.fixture
    def fault_target(self) -> TargetFactory:
        """Return ``make(own_server) -> FaultTarget`` for the broker under test."""
        raise NotImplementedError("a FaultContract subclass provides fault_target")

    @pytest.fixture
    def fault_lab(self, fault_target: TargetFactory, tmp_path: Path) -> Iterator[FaultLab]:
        """A queue of its own on the broker; servers may be shared with other tests."""
        lab = FaultLab(fault_target(False), tmp_path / "lab")
        yield lab
        lab.close()

    @pytest.fixture
    def crash_lab(self, fault_target: TargetFactory, tmp_path: Path) -> Iterator[FaultLab]:
        """A queue on a server only this test uses, for scenarios that kill it."""
        target = fault_target(True)
        if target.server is None:
            pytest.skip("the broker runs on no server of its own (fault_target gives server=None)")
        lab = FaultLab(target, tmp_path / "crash-lab")
        yield lab
        lab.close()

    # -- processes die ---------------------------------------------------------------------
    def test_f1_sigkilled_worker_task_runs_again_with_one_success(self, fault_lab: FaultLab) -> None:
        sigkill_a_busy_worker(fault_lab)

    def test_f2_sigkilled_cluster_tasks_run_in_the_next_cluster(self, fault_lab: FaultLab) -> None:
        fault_lab.configure(lease=fault_lab.lease(2.0))
        first = fault_lab.cluster()
        victim = fault_lab.enqueue(f"{TASKS}.sleepy", "victim", 1.0)
        fault_lab.enqueue_many(f"{TASKS}.sleepy", [(f"q{i}", 0.05) for i in range(30)])
        recorded(fault_lab, "sleepy")
        first.kill_all()  # sentinel and children at once: nothing is handed back
        fault_lab.cluster()
        settle(fault_lab)
        record = fault_lab.client.fetch(victim)
        assert record is not None and record.success and record.attempts == 2
        fault_lab.assert_invariant()

    def test_f3_workers_killed_again_and_again_the_cluster_keeps_going(self, fault_lab: FaultLab) -> None:
        cluster = fault_lab.cluster()
        fault_lab.enqueue_many(f"{TASKS}.sleepy", [(f"a{i}", 0.02) for i in range(300)])
        killed: list[int] = []
        for kills in range(1, 7):  # the oldest live worker each time: every worker slot three times
            recorded(fault_lab, "sleepy", count=kills * 10)
            known = len(cluster.worker_pids())
            killed.append(next(pid for pid in cluster.worker_pids() if pid not in killed))
            os.kill(killed[-1], signal.SIGKILL)
            wait_until(lambda: len(cluster.worker_pids()) > known, timeout=30)  # noqa: B023
        after = fault_lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(100)])
        settle(fault_lab)
        assert [fault_lab.client.result(i) for i in after] == list(range(1, 101))
        assert len(cluster.wait_for(r"reincarnated worker Process-\w+ after death", count=6)) == 6
        fault_lab.assert_invariant()

    def test_f4_task_that_kills_its_worker_fails_at_max_attempts(self, fault_lab: FaultLab) -> None:
        fault_lab.configure(max_attempts=3)
        fault_lab.cluster()
        poison = fault_lab.enqueue(f"{TASKS}.suicide", "poison")
        others = fault_lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(20)])
        settle(fault_lab)
        record = fault_lab.client.fetch(poison)
        assert record is not None and not record.success and record.attempts == 3
        assert "died on each of 3 attempts" in record.result
        assert len(fault_lab.ledger().kind("suicide")) == 3
        assert [fault_lab.client.result(i) for i in others] == list(range(1, 21))
        fault_lab.assert_invariant()

    def test_f5_timeout_kills_a_cpu_loop_a_sleep_and_a_socket_read_once_each(
        self, fault_lab: FaultLab
    ) -> None:
        fault_lab.configure(lease=fault_lab.lease(10.0))
        cluster = fault_lab.cluster()
        with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never sends
            port = silent.getsockname()[1]
            stuck = [
                fault_lab.enqueue(f"{TASKS}.spin", "cpu", 60.0, timeout=1),
                fault_lab.enqueue(f"{TASKS}.sleepy", "sleep", 60.0, timeout=1),
                fault_lab.enqueue(f"{TASKS}.read_socket", "socket", port, timeout=1),
            ]
            after = fault_lab.enqueue(f"{TASKS}.inc", 1)
            settle(fault_lab)
        records = [fault_lab.client.fetch(task_id) for task_id in stuck]
        outcomes = [(r.success, r.result, r.attempts) for r in records if r is not None]
        assert outcomes == [(False, "timed out after 1 s", 1)] * 3
        assert fault_lab.client.result(after) == 2
        ledger = fault_lab.announced(stuck)
        assert [ledger.begun[i] for i in stuck] == [1, 1, 1]  # not retried
        assert [ledger.finals[i] for i in stuck] == [1, 1, 1]  # failure recorded exactly once
        cluster.wait_for(r"reincarnated worker Process-\w+ after death", count=3)
        fault_lab.assert_invariant()

    def test_f6_task_running_three_leases_runs_once(self, fault_lab: FaultLab) -> None:
        lease = fault_lab.lease(1.0)
        fault_lab.configure(lease=lease)
        fault_lab.cluster()
        task_id = fault_lab.enqueue(f"{TASKS}.sleepy", "long", 3.2 * lease)
        settle(fault_lab)
        record = fault_lab.client.fetch(task_id)
        assert record is not None and record.success and record.attempts == 1
        assert fault_lab.ledger().begun[task_id] == 1
        fault_lab.assert_invariant()

    # -- the server fails ------------------------------------------------------------------
    def test_f8_server_killed_and_restarted_consumption_resumes(self, crash_lab: FaultLab) -> None:
        server = crash_lab.target.server
        assert server is not None
        crash_lab.configure(lease=crash_lab.lease(3.0))
        cluster = crash_lab.cluster()
        crash_lab.enqueue_many(f"{TASKS}.sleepy", [(f"t{i:02d}", 0.2) for i in range(24)])
        recorded(crash_lab, "sleepy", count=4)
        server.kill_hard()  # while tasks are queued, prefetched and running
        cluster.wait_for(r"cannot reach the broker", timeout=30)
        server.start()  # same port, same data
        resumed = crash_lab.enqueue(f"{TASKS}.inc", 1)
        # Consumption resumes within 10 s of the server's recovery (behind what was queued).
        assert crash_lab.client.fetch(resumed, wait=10.0) is not None
        settle(crash_lab)
        cluster.wait_for(r"reached the broker again")
        assert cluster.process.poll() is None and "reincarnated" not in cluster.log
        crash_lab.assert_invariant(crash_lab.task_ids if type(server).durable else [resumed])

    def test_f9_server_frozen_for_a_moment_loses_nothing(self, crash_lab: FaultLab) -> None:
        server = crash_lab.target.server
        assert server is not None
        crash_lab.configure(lease=crash_lab.lease(5.0))
        crash_lab.cluster()
        crash_lab.enqueue_many(f"{TASKS}.sleepy", [(f"t{i:02d}", 0.1) for i in range(30)])
        recorded(crash_lab, "sleepy", count=4)
        server.pause()  # connections hang instead of failing: the slow kind of outage
        time.sleep(2.0)
        server.resume()
        settle(crash_lab)
        crash_lab.assert_invariant()

    def test_f10_enqueue_while_the_server_is_down_raises_and_returns_no_id(self, crash_lab: FaultLab) -> None:
        server = crash_lab.target.server
        assert server is not None
        crash_lab.enqueue(f"{TASKS}.inc", 0)  # a pooled connection that the crash breaks
        server.kill_hard()
        for enqueue in (
            lambda: crash_lab.enqueue(f"{TASKS}.inc", 1),
            lambda: crash_lab.enqueue_many(f"{TASKS}.inc", [(2,), (3,)]),
        ):
            with pytest.raises(BrokerError) as caught:
                enqueue()
            assert "\n" not in str(caught.value)
        assert len(crash_lab.task_ids) == 1  # no id came back for what was not stored
        server.start()
        if type(server).durable:
            assert_size(crash_lab.broker.queue_size, 1, crash_lab.broker)
        crash_lab.cluster()
        settle(crash_lab)
        assert crash_lab.client.result(crash_lab.task_ids[0]) == 1
        assert [row[1] for row in crash_lab.ledger().kind("inc")] == ["0"]
        crash_lab.assert_invariant()

    # -- stops, deploys, two clusters -----------------------------------------------------
    def test_f11_sigterm_hands_back_prefetched_tasks_and_a_restart_runs_them_once(
        self, fault_lab: FaultLab
    ) -> None:
        fault_lab.configure(workers=1, prefetch=4)
        ids = fault_lab.enqueue_many(f"{TASKS}.sleepy", [(f"t{i}", 0.5) for i in range(6)])
        cluster = fault_lab.cluster()
        recorded(fault_lab, "sleepy")
        assert cluster.stop() == 0
        broker = fault_lab.broker
        assert_size(broker.lock_size, 0, broker)  # nothing left leased
        finished = fault_lab.finished()
        assert finished >= 1
        assert_size(broker.queue_size, 6 - finished, broker)
        fault_lab.cluster()
        settle(fault_lab)
        ledger = fault_lab.ledger()
        assert [ledger.begun[i] for i in ids] == [1] * 6
        if fault_lab.broker_class.can_release:
            assert {fault_lab.client.fetch(i).attempts for i in ids} == {1}  # type: ignore[union-attr]
        fault_lab.assert_invariant()

    def test_f14_two_clusters_on_one_queue_run_1000_tasks_once_each(self, fault_lab: FaultLab) -> None:
        first, second = fault_lab.cluster(), fault_lab.cluster()
        fault_lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(1000)])
        settle(fault_lab, timeout=120)
        verdict = fault_lab.assert_invariant()
        ledger = fault_lab.ledger()
        assert [n for n in ledger.begun.values() if n != 1] == []
        assert not verdict.executed_twice
        pids = {int(row[-1]) for row in ledger.kind("inc")}
        assert pids & set(first.worker_pids()), "the first cluster ran nothing"
        assert pids & set(second.worker_pids()), "the second cluster ran nothing"

    # -- bad payloads, memory, delays, fairness ---------------------------------------------
    def test_f15_bad_payloads_are_dead_lettered_never_run_and_the_queue_flows(
        self, fault_lab: FaultLab
    ) -> None:
        codec = fault_lab.codec()

        def task(x: int) -> dict[str, object]:
            return Task(f"{TASKS}.inc", (x,)).to_dict()

        good = codec.encode(task(1000))
        tampered = bytearray(good)
        tampered[-3] ^= 0xFF
        keys = [fault_lab.config.secret_key or ""]
        bad = {
            "malformed": b"not even a qframe payload",
            "unsigned": pickle.dumps(task(2000)),
            "tampered": bytes(tampered),
            "wrong key": Codec(["another key"], fault_lab.name).encode(task(3000)),
            "wrong salt": Codec(keys, "another-queue").encode(task(4000)),
            "truncated": good[: len(good) // 2],
            "malicious pickle": b"\0" * 45 + pickle.dumps(Exploit()),
            "signed malicious pickle": Codec(["another key"], fault_lab.name).encode(Exploit()),
        }
        broker = fault_lab.broker
        message_ids = {}
        for i, (kind, payload) in enumerate(bad.items()):
            fault_lab.enqueue(f"{TASKS}.inc", i)
            message_ids[broker.enqueue(payload)] = kind
        fault_lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(100, 110)])
        cluster = fault_lab.cluster()
        settle(fault_lab)
        dead = wait_until(lambda: (d := fault_lab.dead_letters()) and len(d) >= len(bad) and d, timeout=30)
        assert sorted(letter.message_id for letter in dead) == sorted(message_ids)
        for message_id in message_ids:
            cluster.wait_for(rf"rejected message {message_id} from queue '{fault_lab.name}': ")
        ledger = fault_lab.ledger()
        assert ledger.kind("pwned") == []
        assert sorted(int(row[1]) for row in ledger.kind("inc")) == [*range(len(bad)), *range(100, 110)]
        fault_lab.assert_invariant()

    def test_f16_leaking_worker_is_recycled_between_tasks_without_losing_one(
        self, fault_lab: FaultLab
    ) -> None:
        fault_lab.configure(max_rss=100)
        cluster = fault_lab.cluster()
        leaks = fault_lab.enqueue_many(f"{TASKS}.grow", [(60,)] * 8)
        fault_lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(20)])
        settle(fault_lab)
        assert all(fault_lab.client.fetch(i).success for i in leaks)  # type: ignore[union-attr]
        assert [fault_lab.ledger().begun[i] for i in leaks] == [1] * 8
        assert len({fault_lab.client.result(i) for i in leaks}) >= 3  # leaking workers were replaced
        cluster.wait_for(r"recycled worker Process-\w+", count=2)
        fault_lab.assert_invariant()

    def test_f17_task_delayed_past_its_lease_runs_once(self, fault_lab: FaultLab) -> None:
        lease = fault_lab.lease(1.0)
        delay = 2.5 * lease
        max_delay = fault_lab.broker_class.max_delay
        if max_delay is not None and delay > max_delay and not isinstance(fault_lab.client.store, DelayStore):
            pytest.skip(f"broker declares max_delay={max_delay!r} and the store holds no delayed tasks")
        fault_lab.configure(lease=lease)
        fault_lab.cluster()
        enqueued = time.time()
        task_id = fault_lab.enqueue(f"{TASKS}.sleepy", "late", 0.0, delay=delay)
        settle(fault_lab, timeout=SETTLE + delay)
        time.sleep(lease)  # time enough for a duplicate delivery to show up
        record = fault_lab.client.fetch(task_id)
        assert record is not None and record.success and record.attempts == 1
        assert record.started >= enqueued + delay - 0.05  # not before its due time (clock rounding)
        assert fault_lab.ledger().begun[task_id] == 1
        fault_lab.assert_invariant()

    def test_f19_short_tasks_do_not_wait_behind_a_long_one(self, fault_lab: FaultLab) -> None:
        fault_lab.configure(workers=2)
        fault_lab.cluster()
        long = fault_lab.enqueue(f"{TASKS}.sleepy", "long", 3.0)
        recorded(fault_lab, "sleepy")
        short = fault_lab.enqueue_many(f"{TASKS}.sleepy", [(f"s{i}", 0.1) for i in range(10)])
        settle(fault_lab)
        long_record = fault_lab.client.fetch(long)
        assert long_record is not None
        late = [i for i in short if fault_lab.client.fetch(i).stopped > long_record.stopped]  # type: ignore[union-attr]
        assert late == [], f"{len(late)} short tasks finished after the long one"
        fault_lab.assert_invariant()
