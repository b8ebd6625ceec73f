"""Retries with backoff: whether a failed run goes back to the broker, and with what delay.

A retry is an ack of this delivery plus a new, delayed enqueue of the same task, its
``retries`` (runs so far) carried in the payload. It needs nothing of a broker but
``enqueue``, so it works on every broker; the enqueue comes first, so a crash between the
two runs the task once more rather than losing it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time

from qframe.brokers.base import Broker
from qframe.cluster.outcome import Outcome, attempts_left
from qframe.config import Config
from qframe.current import Retry
from qframe.serialize import Codec
from qframe.stores.base import Store
from qframe.stores.delays import DelayStore
from qframe.task import Task, resolve

log = logging.getLogger("qframe")

BACKOFFS = ("fixed", "exponential")


def backoff(attempt: int, kind: str, base: float, cap: float, jitter: bool) -> float:
    """Seconds to wait before the run after run ``attempt`` (1 = the first).

    ``fixed`` waits ``base``; ``exponential`` waits ``base * 2 ** (attempt - 1)``, at most
    ``cap``, and with ``jitter`` a uniformly random time up to that ("full jitter").
    """
    wait = min(cap, base if kind == "fixed" else base * 2.0 ** min(attempt - 1, 64))
    return random.uniform(0.0, wait) if jitter and kind == "exponential" else wait


def retry_delay(task: Task, error: BaseException | None, attempt: int, config: Config) -> float | None:
    """The delay before ``task`` runs again after run ``attempt`` failed with ``error``; None: no retry.

    A task retries when it raised :class:`Retry` or an instance of one of its ``retry_on``
    types (the cluster's when the task names none), and has attempts left.
    """
    if error is None or not attempts_left(attempt, task.max_attempts, config):
        return None
    if isinstance(error, Retry) and error.countdown is not None:
        return max(0.0, float(error.countdown))
    if not isinstance(error, Retry) and not isinstance(error, _types(task.retry_on or config.retry_on)):
        return None
    return backoff(
        attempt,
        task.backoff or config.backoff,
        config.retry_delay if task.retry_delay is None else task.retry_delay,
        config.max_backoff if task.max_backoff is None else task.max_backoff,
        config.jitter if task.jitter is None else task.jitter,
    )


def _types(paths: tuple[str, ...]) -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    for path in paths:
        try:
            target = resolve(path)
        except Exception as exc:
            log.error("retry_on names %s, which is not an exception type here: %s", path, exc)
            continue
        if isinstance(target, type) and issubclass(target, BaseException):
            found.append(target)
        else:
            log.error("retry_on names %s, which is not an exception type", path)
    return tuple(found)


def as_retry(outcome: Outcome, codec: Codec, task: Task, attempt: int, delay: float) -> Outcome:
    """``outcome`` settled as a retry: acked, and the task enqueued again after ``delay`` s."""
    again = dataclasses.replace(task, retries=attempt)
    payload = codec.encode(again.to_message(), timeout=task.timeout, max_attempts=task.max_attempts)
    return outcome._replace(settle="retry", payload=payload, delay=delay, follow=None, collate=None)


def enqueue_again(broker: Broker, store: Store, payload: bytes, delay: float) -> None:
    """Enqueue a retry: in the broker, or held in the store when the delay is past ``max_delay``."""
    max_delay = type(broker).max_delay
    if max_delay is not None and delay > max_delay:
        if isinstance(store, DelayStore):
            store.hold(broker.queue, payload, time.time() + delay)
            return
        log.warning("retry delay %.1f s cut to the broker's max_delay %.1f s", delay, max_delay)
        delay = max_delay
    broker.enqueue(payload, delay=delay)


def retried(
    done: Outcome, codec: Codec, config: Config, task: Task, error: BaseException | None, attempt: int
) -> Outcome:
    """``done`` turned into a retry when run ``attempt`` of ``task`` failed with a retryable ``error``."""
    delay = retry_delay(task, error, attempt, config)
    return done if delay is None else as_retry(done, codec, task, attempt, delay)


def out_of_retries(task: Task, error: BaseException | None, attempt: int, config: Config) -> bool:
    """Whether run ``attempt`` failed with ``error`` that would go round again, but no attempt is left.

    "Would go round again": a :class:`Retry`, an error of its ``retry_on`` types, or any
    error with ``ack_failure=False`` (failures redelivered). Such a task is past
    ``max_attempts``; a plain failure of a task without retries is not.
    """
    if error is None or attempts_left(attempt, task.max_attempts, config):
        return False
    retrying = isinstance(error, Retry) or not task.ack_failure
    return retrying or isinstance(error, _types(task.retry_on or config.retry_on))
