"""What a run of a task leaves for the monitor, and the one rule on attempts."""

from __future__ import annotations

from typing import Any, NamedTuple

from qframe.brokers.base import Message
from qframe.config import Config
from qframe.serialize import Codec
from qframe.stores.base import ResultMeta
from qframe.task import Task, TaskResult, kept


class Outcome(NamedTuple):
    """What the monitor must do with one delivery: save its result, then settle it."""

    ack_id: str
    #: ``ack``, ``nack`` (another attempt), ``retry`` (ack and enqueue again, delayed),
    #: ``quarantine`` (undecodable payload: no result) or ``dead`` (past max_attempts: the
    #: failure result is saved, then the delivery is moved to the dead letters).
    settle: str
    meta: ResultMeta | None = None
    #: The signed, encoded :class:`~qframe.task.TaskResult`.
    blob: bytes | None = None
    #: Whether the result goes to the store (:func:`qframe.task.kept`): ``save``, a failure, ``cached``.
    save: bool = True
    #: Dotted path of the task's own hook, called with the result after saving.
    hook: str | None = None
    #: The timeout in seconds when the task was killed for running past it.
    timed_out: float | None = None
    #: Why the payload was quarantined, or the task moved to the dead letters.
    reason: str = ""
    #: The delivery itself, on a quarantine or dead settle (its payload may be kept in the store).
    message: Message | None = None
    #: On a ``retry`` settle: the task's next payload, and the seconds before it is due.
    payload: bytes | None = None
    delay: float = 0.0
    #: The next link of the task's chain (:meth:`Task.to_dict` data), enqueued before the ack.
    follow: dict[str, Any] | None = None
    #: An iterator element's final result: ``(iterator id, element count, cached seconds)`` to
    #: collate after the save.
    collate: tuple[str, int, float] | None = None
    #: On a ``dead`` settle: the last failure's one-line error, kept with the dead letter.
    last_error: str = ""

    def pack(self) -> tuple[Any, ...]:
        """This outcome as plain tuples, for the channel to the monitor (:meth:`unpack` rebuilds it).

        A named tuple pickles by reference to its class, which costs more than the rest of
        an outcome together: 2.8 µs against 1.0 µs for plain tuples.
        """
        return (self.ack_id, self.settle, self.meta and tuple(self.meta), *self[3:])

    @classmethod
    def unpack(cls, data: tuple[Any, ...]) -> Outcome:
        """The outcome :meth:`pack` made ``data`` of."""
        meta = data[2]
        return cls(data[0], data[1], meta and ResultMeta(*meta), *data[3:])


def attempts_left(attempts: int, own_limit: int | None, config: Config) -> bool:
    """Whether a task delivered ``attempts`` times may be delivered again.

    The task's own ``max_attempts`` wins over the cluster's; 0 means no limit.
    """
    limit = attempt_limit(own_limit, config)
    return not limit or attempts < limit


def dead(done: Outcome, message: Message, last_error: str, limit: int) -> Outcome:
    """``done`` (a final failure) settled as a dead letter: past ``max_attempts`` (``limit``).

    The failure result is still saved (``result()`` answers); the delivery then goes to
    the dead letters instead of being acknowledged, so it can be requeued.
    """
    first_line = last_error.strip().splitlines()[0] if last_error.strip() else ""
    return done._replace(
        settle="dead", reason=f"past max_attempts ({limit})", message=message, last_error=first_line
    )


def attempt_limit(own_limit: int | None, config: Config) -> int:
    """The ``max_attempts`` that applies to a task (0 = no limit)."""
    return config.max_attempts if own_limit is None else own_limit


def outcome(
    results: Codec,
    config: Config,
    task: Task,
    result: TaskResult,
    ack_id: str,
    timed_out: float | None = None,
) -> Outcome:
    """Encode ``result`` and decide how its delivery is settled."""
    try:
        blob = results.encode(result.to_dict())
    except Exception as exc:
        result.result, result.success = (
            f"the result could not be serialized: {type(exc).__name__}: {exc}",
            False,
        )
        blob = results.encode(result.to_dict())
    retry = (
        not result.success
        and not task.ack_failure
        and attempts_left(result.attempts, task.max_attempts, config)
    )
    save = kept(task, result)
    follow = None if retry else next_link(task, result)
    settle = "nack" if retry else "ack"
    collate = (
        (task.group, task.iter_count, task.cached) if task.iter_count and task.group and not retry else None
    )
    return Outcome(
        ack_id, settle, task.meta_of(result), blob, save, task.hook, timed_out, follow=follow, collate=collate
    )


def next_link(task: Task, result: TaskResult) -> dict[str, Any] | None:
    """The next link of ``task``'s chain to enqueue now that ``result`` is final, or None."""
    if not task.chain or not (result.success or task.continue_on_failure):
        return None
    following, *rest = task.chain
    return {**following, "chain": list(rest)}
