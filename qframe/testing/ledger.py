"""The runs ledger of fault tests, and the invariant checked on it.

Loaded into every cluster process as a hook plugin (``plugin_modules =
["qframe.testing.ledger"]``), this module appends a line to ``$QFRAME_TEST_LOG`` (with
:func:`qframe.testing.tasks.record`, so lines of many processes never mix):

- ``run-begin <task id> <attempt>`` in the worker, right before a run;
- ``run-end <task id> <1|0>`` in the worker, right after it (1: the task returned);
- ``final <task id> <1|0>`` in the monitor, each time a final result was saved and announced.

:func:`check` reads the ledger beside the store and the dead letters and returns a
:class:`Verdict`: every enqueued task must end with exactly one final record (a success,
a failure or a dead letter; a task past ``max_attempts`` ends with its failure *and* one
dead letter), none may be lost, and no success may be overwritten (a task one of whose
runs returned must not end recorded as a failure).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from qframe import hookimpl
from qframe.task import Task, TaskResult
from qframe.testing.tasks import record


@hookimpl
def qframe_pre_execute(task: Task, attempt: int) -> None:
    """Ledger: a run of ``task`` begins."""
    record("run-begin", task.id, attempt)


@hookimpl
def qframe_post_execute(task: Task, result: TaskResult) -> None:
    """Ledger: the run ended; ``1`` when the task returned."""
    record("run-end", task.id, int(result.success))


@hookimpl
def qframe_task_succeeded(result: TaskResult) -> None:
    """Ledger: a success was saved as the task's final record."""
    record("final", result.id, 1)


@hookimpl
def qframe_task_failed(result: TaskResult) -> None:
    """Ledger: a failure was saved as the task's final record."""
    record("final", result.id, 0)


@dataclass
class Ledger:
    """The ledger lines of one queue, counted per task id."""

    #: Runs begun.
    begun: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Runs in which the task returned (a success).
    returned: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Runs that ended at all (returned or raised).
    ended: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Final records saved and announced.
    finals: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Every line, split into fields, the other records of ``qframe.testing.tasks`` included.
    rows: list[list[str]] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Ledger:
        """Parse the ledger file (missing: an empty ledger)."""
        ledger = cls()
        text = path.read_text() if path.exists() else ""
        for line in text.splitlines():
            row = line.split("\t")
            ledger.rows.append(row)
            if row[0] == "run-begin":
                ledger.begun[row[1]] += 1
            elif row[0] == "run-end":
                ledger.ended[row[1]] += 1
                ledger.returned[row[1]] += row[2] == "1"
            elif row[0] == "final":
                ledger.finals[row[1]] += 1
        return ledger

    def kind(self, kind: str) -> list[list[str]]:
        """The rows a task recorded under ``kind`` (``sleepy``, ``inc``...)."""
        return [row for row in self.rows if row[0] == kind]


@dataclass(frozen=True)
class Verdict:
    """What became of a set of enqueued tasks; :attr:`violations` names the broken promises."""

    tasks: int
    #: No final record at all: no result, no dead letter.
    lost: list[str]
    #: More than one final record: listed twice in its group, two dead letters, or a success
    #: and a dead letter (a failure beside one dead letter is a task past max_attempts).
    duplicated: list[str]
    #: A run returned, yet the final record is a failure (a success overwritten or dropped).
    false_failures: list[str]
    #: A success on record without any run that returned (the ledger contradicts the store).
    phantoms: list[str]
    #: Runs that returned more than once (at-least-once allows it after a fault).
    executed_twice: list[str]
    #: Final outcomes saved and announced more than once (a later run's result replaced the
    #: first, equal in kind: at-least-once allows it when an acknowledgement was lost).
    saved_twice: list[str]
    #: Final records that are failures (a true failure: raised, timed out, out of attempts).
    failed: list[str]
    #: Moved to dead letters (a task past max_attempts also has its failure record).
    dead_lettered: list[str]

    @property
    def violations(self) -> dict[str, list[str]]:
        """The broken promises, by name; empty when the invariant holds."""
        found = {
            "lost": self.lost,
            "duplicated final records": self.duplicated,
            "false failures": self.false_failures,
            "successes nobody ran": self.phantoms,
        }
        return {name: ids for name, ids in found.items() if ids}

    def explain(self) -> str:
        """One line per kind of violation, with a few task ids."""
        found = self.violations.items()
        return "; ".join(f"{len(ids)} {name} (e.g. {', '.join(ids[:3])})" for name, ids in found)


def check(
    task_ids: Iterable[str],
    results: dict[str, TaskResult | None],
    listed: Iterable[str],
    dead_lettered: Iterable[str],
    ledger: Ledger,
) -> Verdict:
    """Judge ``task_ids``: their saved ``results`` (by id), the ids the store ``listed`` for
    their group (one per record), the task ids found in dead letters, and the ledger."""
    ids = list(dict.fromkeys(task_ids))
    listings = collections.Counter(listed)
    dead = collections.Counter(dead_lettered)
    lost, duplicated, false_failures, phantoms, failed = [], [], [], [], []
    for task_id in ids:
        result = results.get(task_id)
        if result is None and not dead[task_id]:
            lost.append(task_id)
        elif listings[task_id] > 1 or dead[task_id] > 1 or (dead[task_id] and result and result.success):
            duplicated.append(task_id)
        if result is None:
            continue
        if result.success and not ledger.returned[task_id]:
            phantoms.append(task_id)
        elif not result.success:
            failed.append(task_id)
            if ledger.returned[task_id]:
                false_failures.append(task_id)
    return Verdict(
        tasks=len(ids),
        lost=lost,
        duplicated=duplicated,
        false_failures=false_failures,
        phantoms=phantoms,
        executed_twice=[task_id for task_id in ids if ledger.returned[task_id] > 1],
        saved_twice=[task_id for task_id in ids if ledger.finals[task_id] > 1],
        failed=failed,
        dead_lettered=[task_id for task_id in ids if dead[task_id]],
    )
