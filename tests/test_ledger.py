"""The invariant of the fault tests: what ``qframe.testing.ledger.check`` calls a violation."""

from __future__ import annotations

from pathlib import Path

from qframe.task import Task, TaskResult
from qframe.testing.ledger import Ledger, check


def result(task_id: str, success: bool = True) -> TaskResult:
    return TaskResult.of(Task("m.f", id=task_id, name=task_id), "x" if success else "failed", success, 0.0, 1)


def ledger_of(tmp_path: Path, *lines: str) -> Ledger:
    path = tmp_path / "ledger"
    path.write_text("".join(f"{line}\t123\n" for line in lines))
    return Ledger.read(path)


def test_a_task_with_one_success_that_ran_is_no_violation(tmp_path: Path) -> None:
    ledger = ledger_of(tmp_path, "run-begin\ta\t1", "run-end\ta\t1", "final\ta\t1")
    verdict = check(["a"], {"a": result("a")}, ["a"], [], ledger)
    assert verdict.violations == {} and verdict.tasks == 1


def test_a_task_without_result_or_dead_letter_is_lost(tmp_path: Path) -> None:
    verdict = check(["a", "b"], {"a": None, "b": None}, [], ["b"], ledger_of(tmp_path))
    assert verdict.violations == {"lost": ["a"]}
    assert verdict.dead_lettered == ["b"]


def test_two_records_of_one_task_are_duplicated_final_records(tmp_path: Path) -> None:
    ledger = ledger_of(tmp_path, "run-end\ta\t1", "run-end\tb\t1")
    results = {"a": result("a"), "b": result("b")}
    verdict = check(["a", "b"], results, ["a", "a", "b"], ["b"], ledger)
    assert verdict.violations == {"duplicated final records": ["a", "b"]}


def test_a_failure_with_one_dead_letter_is_a_task_past_max_attempts_not_a_duplicate(tmp_path: Path) -> None:
    ledger = ledger_of(tmp_path, "run-end\ta\t0", "run-end\tb\t0", "run-end\tc\t1")
    results = {"a": result("a", success=False), "b": result("b", success=False), "c": result("c")}
    verdict = check(["a", "b", "c"], results, ["a", "b", "c"], ["a", "b", "b", "c"], ledger)
    assert verdict.violations == {"duplicated final records": ["b", "c"]}  # two letters; a success and one
    assert verdict.dead_lettered == ["a", "b", "c"]


def test_a_failure_after_a_run_that_returned_is_a_false_failure(tmp_path: Path) -> None:
    ledger = ledger_of(tmp_path, "run-end\ta\t1", "run-end\ta\t0", "run-end\tb\t0")
    results = {"a": result("a", success=False), "b": result("b", success=False)}
    verdict = check(["a", "b"], results, ["a", "b"], [], ledger)
    assert verdict.violations == {"false failures": ["a"]}
    assert verdict.failed == ["a", "b"]  # b raised every time: a true failure


def test_a_success_nobody_ran_is_a_phantom(tmp_path: Path) -> None:
    verdict = check(["a"], {"a": result("a")}, ["a"], [], ledger_of(tmp_path, "run-end\ta\t0"))
    assert verdict.violations == {"successes nobody ran": ["a"]}


def test_second_runs_and_second_saves_are_counted_but_allowed(tmp_path: Path) -> None:
    ledger = ledger_of(tmp_path, "run-end\ta\t1", "run-end\ta\t1", "final\ta\t1", "final\ta\t1")
    verdict = check(["a"], {"a": result("a")}, ["a"], [], ledger)
    assert verdict.violations == {}
    assert verdict.executed_twice == ["a"] and verdict.saved_twice == ["a"]
    assert "1 lost" in check(["z"], {}, [], [], ledger).explain()
