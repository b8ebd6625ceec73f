"""The conformance suite of the ScheduleStore role: one winner per slot, across threads and processes.

A store's tests subclass :class:`ScheduleStoreContract` and provide a factory that
**pickles** (each process of the race builds its own store from it), for example::

    class TestRedisScheduleStore(ScheduleStoreContract):
        @pytest.fixture
        def schedule_store_factory(self, redis_url, key_prefix):
            return functools.partial(RedisStore, redis_url, prefix=key_prefix)
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from multiprocessing.queues import Queue
from typing import Any, Protocol

import pytest

from qframe.schedulers.base import ScheduleStore

ScheduleStoreFactory = Callable[[], ScheduleStore]

#: Slots each race runs over.
SLOTS = 200
#: Seconds any one wait of a race may take before the test fails (keeps a hang bounded).
STEP_TIMEOUT = 30.0


class Barrier(Protocol):
    """What the racers wait on before each claim (a ``threading`` or ``multiprocessing`` barrier)."""

    def wait(self, timeout: float | None = None) -> Any:
        """Block until every racer arrived."""


def claim_every_slot(
    factory: ScheduleStoreFactory, schedule_id: str, owner: str, barrier: Barrier, slots: int
) -> list[int]:
    """Build a store, then claim slots ``0 .. slots-1`` in step with the other racers; return the won ones."""
    store = factory()
    won = []
    try:
        for slot in range(slots):
            barrier.wait(STEP_TIMEOUT)
            if store.claim_slot(schedule_id, slot, owner):
                won.append(slot)
    finally:
        store.close()
    return won


def claim_in_child(
    factory: ScheduleStoreFactory,
    schedule_id: str,
    owner: str,
    barrier: Barrier,
    slots: int,
    results: Queue[tuple[str, list[int] | str]],
) -> None:
    """A racing process's main function: report the won slots, or the error, on ``results``."""
    try:
        results.put((owner, claim_every_slot(factory, schedule_id, owner, barrier, slots)))
    except BaseException as exc:
        results.put((owner, f"{type(exc).__name__}: {exc}"))


def assert_one_winner_per_slot(won: dict[str, list[int] | str], slots: int) -> None:
    """Every slot was won by exactly one racer (none raised)."""
    failed = {owner: result for owner, result in won.items() if isinstance(result, str)}
    assert not failed, f"racers failed: {failed}"
    winners: dict[int, list[str]] = {}
    for owner, result in won.items():
        for slot in result if isinstance(result, list) else []:
            winners.setdefault(slot, []).append(owner)
    shared = {slot: owners for slot, owners in winners.items() if len(owners) > 1}
    assert not shared, f"{len(shared)} slots claimed by more than one racer, e.g. {min(shared.items())}"
    assert sorted(winners) == list(range(slots)), f"{slots - len(winners)} slots claimed by nobody"


class ScheduleStoreContract:
    """The promises of :class:`qframe.schedulers.ScheduleStore`, as tests."""

    @pytest.fixture
    def schedule_store_factory(self) -> ScheduleStoreFactory:
        """Return a picklable ``factory() -> ScheduleStore`` on a live, empty server."""
        raise NotImplementedError("a ScheduleStoreContract subclass provides schedule_store_factory")

    @pytest.fixture
    def schedule_store(self, schedule_store_factory: ScheduleStoreFactory) -> Iterator[ScheduleStore]:
        """One store from the factory."""
        store = schedule_store_factory()
        yield store
        store.close()

    @pytest.fixture
    def schedule_id(self) -> str:
        """A schedule id no other test uses."""
        return f"schedule-{uuid.uuid4().hex[:10]}"

    def test_two_threads_claim_each_slot_once(
        self, schedule_store_factory: ScheduleStoreFactory, schedule_id: str
    ) -> None:
        barrier = threading.Barrier(2)
        won: dict[str, list[int] | str] = {}

        def race(owner: str) -> None:
            try:
                won[owner] = claim_every_slot(schedule_store_factory, schedule_id, owner, barrier, SLOTS)
            except Exception as exc:
                won[owner] = f"{type(exc).__name__}: {exc}"
                barrier.abort()

        threads = [threading.Thread(target=race, args=(f"thread-{i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(STEP_TIMEOUT * 2)
        assert len(won) == 2, "a racing thread did not finish"
        assert_one_winner_per_slot(won, SLOTS)

    def test_two_processes_claim_each_slot_once(
        self, schedule_store_factory: ScheduleStoreFactory, schedule_id: str
    ) -> None:
        try:
            pickle.dumps(schedule_store_factory)
        except Exception as exc:
            pytest.fail(f"schedule_store_factory must pickle (use functools.partial, not a lambda): {exc}")
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(2)
        results: Queue[tuple[str, list[int] | str]] = context.Queue()
        processes = [
            context.Process(
                target=claim_in_child,
                args=(schedule_store_factory, schedule_id, f"process-{i}", barrier, SLOTS, results),
            )
            for i in range(2)
        ]
        for process in processes:
            process.start()
        won: dict[str, list[int] | str] = {}
        try:
            for _ in processes:
                owner, result = results.get(timeout=STEP_TIMEOUT * 2)
                won[owner] = result
                if isinstance(result, str):
                    barrier.abort()
        except queue.Empty:
            pytest.fail(f"a racing process did not report; reported: {sorted(won)}")
        finally:
            for process in processes:
                process.join(STEP_TIMEOUT)
                if process.is_alive():
                    process.kill()
                    process.join(5)
        assert_one_winner_per_slot(won, SLOTS)

    def test_a_claimed_slot_stays_claimed(
        self, schedule_store: ScheduleStore, schedule_store_factory: ScheduleStoreFactory, schedule_id: str
    ) -> None:
        assert schedule_store.slot_owner(schedule_id, 7) is None
        assert schedule_store.claim_slot(schedule_id, 7, "first") is True
        other = schedule_store_factory()
        try:
            assert other.claim_slot(schedule_id, 7, "second") is False
            assert schedule_store.claim_slot(schedule_id, 7, "first") is False
            assert other.slot_owner(schedule_id, 7) == "first"
        finally:
            other.close()
        assert schedule_store.slot_owner(schedule_id, 7) == "first"

    def test_slots_and_schedules_are_independent(
        self, schedule_store: ScheduleStore, schedule_id: str
    ) -> None:
        millis = 1_700_000_000_000  # a Unix time in ms: slots are not limited to 32 bits
        assert schedule_store.claim_slot(schedule_id, millis, "a") is True
        assert schedule_store.claim_slot(schedule_id, millis + 1, "b") is True
        assert schedule_store.claim_slot(schedule_id + "-other", millis, "c") is True
        assert schedule_store.claim_slot(schedule_id, millis, "d") is False
        owners = [
            schedule_store.slot_owner(schedule_id, millis),
            schedule_store.slot_owner(schedule_id, millis + 1),
            schedule_store.slot_owner(schedule_id + "-other", millis),
        ]
        assert owners == ["a", "b", "c"]

    def test_schedules_are_saved_replaced_listed_and_deleted(
        self, schedule_store: ScheduleStore, schedule_id: str
    ) -> None:
        first, second = schedule_id + "-1", schedule_id + "-2"
        schedule_store.save_schedule(first, b"\x00one")
        schedule_store.save_schedule(second, b"two")
        schedule_store.save_schedule(first, b"\x00one, changed")
        assert schedule_store.schedules() == {first: b"\x00one, changed", second: b"two"}
        assert schedule_store.delete_schedule(first) is True
        assert schedule_store.delete_schedule(first) is False
        assert schedule_store.schedules() == {second: b"two"}
