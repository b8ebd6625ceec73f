"""A worker: runs the tasks the pusher hands it, one at a time, and reports each outcome."""

from __future__ import annotations

import functools
import logging
import os
import resource
import time
import traceback
from collections.abc import Callable
from typing import Any

from qframe.brokers.base import Message
from qframe.cluster.context import Context, Runtime, boot
from qframe.cluster.mailbox import Mailbox
from qframe.cluster.outcome import Outcome, attempt_limit, dead, outcome
from qframe.cluster.retries import out_of_retries, retried
from qframe.config import Config
from qframe.current import CurrentTask, reset_current, set_current
from qframe.hooks import Hooks
from qframe.processes import Channel
from qframe.serialize import Codec
from qframe.task import Task, TaskResult, resolve

log = logging.getLogger("qframe")


def run_worker(context: Context, name: str, ready: Channel, index: int) -> None:
    """The worker process's main function.

    The pusher sends batches of deliveries; the worker runs them in order, sends each
    outcome to the monitor and then tells the pusher ``done``, so the pusher always knows
    which delivery runs now. A :class:`Mailbox` thread reads the pusher's messages while a
    task runs, so the pusher can take back deliveries this worker has not started.
    """
    runtime = boot(context, "worker", name)
    config = context.config
    pin_cpus(index, config.cpu_affinity)
    codec, results = context.codec(), context.result_codec()
    orphaned = runtime.processes.orphan_check()
    log.info("%s ready for work at %s", name, os.getpid())
    ready.send(os.getpid())
    ready.close()

    pusher: Mailbox | None = None
    monitor: Channel | None = None
    done = 0
    while True:
        try:
            if pusher is None:
                pusher = Mailbox(runtime.processes.connect(context.pusher_address, context.authkey, orphaned))
                pusher.send(("hello", os.getpid(), name))
            work = pusher.next()
            if work is None:
                break
            ack_id, attempts, envelope, message_id = work
            result = execute(codec, results, runtime.hooks, config, ack_id, attempts, envelope, message_id)
            monitor = report(context, runtime, monitor, result)
            pusher.send(("done",))
            done += 1
            if (config.recycle and done >= config.recycle) or over_memory(config.max_rss):
                pusher.send(("bye",))
                return  # exit code 0: the sentinel replaces a recycled worker
        except (EOFError, OSError):
            pusher = None  # the pusher died; the sentinel starts another at the same address
            if orphaned():
                break
    log.info("%s stopped doing work", name)


def report(context: Context, runtime: Runtime, monitor: Channel | None, result: Outcome) -> Channel | None:
    """Send an outcome to the monitor; if that fails, the delivery's lease brings the task back."""
    try:
        monitor = monitor or runtime.processes.connect(
            context.monitor_address, context.authkey, lambda: False, timeout=5
        )
        monitor.send([result])
        return monitor
    except OSError as exc:
        log.warning("could not report message %s to the monitor (it will run again): %s", result.ack_id, exc)
        return None


def execute(
    codec: Codec,
    results: Codec,
    hooks: Hooks,
    config: Config,
    ack_id: str,
    attempts: int,
    envelope: bytes,
    message_id: str = "",
) -> Outcome:
    """Decode and run one task through ``qframe_execute_task``; never raises."""
    try:
        task = Task.from_dict(codec.decode(envelope))
    except Exception as exc:
        log.error("could not decode message %s: %s", ack_id, exc)
        delivery = Message(ack_id, envelope, attempts, message_id)
        reason = f"undecodable payload: {type(exc).__name__}: {exc}"
        return Outcome(ack_id, "quarantine", reason=reason, message=delivery)
    attempt = task.retries + attempts  # runs in earlier messages (retries) count too
    hooks.pre_execute(task, attempts)
    started = time.time()
    error: BaseException | None = None
    token = set_current(CurrentTask(task.id, task.label, task.func, attempt, task.cluster))
    try:
        value: Any = hooks.execute_task(task, resolve_cached(task.func))
        success = True
    except BaseException as exc:  # a task's SystemExit is a failure too, not the worker's end
        value = "".join(traceback.format_exception(exc)).rstrip()
        success, error = False, exc
        log.error("Failed '%s' (%s) - %s: %s", task.func, task.label, type(exc).__name__, exc)
    finally:
        reset_current(token)
    result = TaskResult.of(task, value, success, started, attempt)
    hooks.post_execute(task, result)
    done = retried(outcome(results, config, task, result, ack_id), codec, config, task, error, attempt)
    if done.settle == "ack" and out_of_retries(task, error, attempt, config):
        delivery = Message(ack_id, envelope, attempts, message_id)
        last_error = f"{type(error).__name__}: {error}"
        done = dead(done, delivery, last_error, attempt_limit(task.max_attempts, config))
    return done


@functools.lru_cache(maxsize=1024)
def resolve_cached(path: str) -> Callable[..., Any]:
    """:func:`resolve`, once per path per worker (a failed import is retried next time)."""
    return resolve(path)


def pin_cpus(index: int, per_worker: int) -> None:
    """Pin this process to ``per_worker`` CPUs, chosen round-robin by worker ``index``."""
    if not per_worker:
        return
    cpus = sorted(os.sched_getaffinity(0))
    if per_worker >= len(cpus):
        return
    chosen = {cpus[(index * per_worker + k) % len(cpus)] for k in range(per_worker)}
    os.sched_setaffinity(0, chosen)
    log.info("%s will use cpu %s", os.getpid(), sorted(chosen))


def over_memory(max_rss_mib: int | None) -> bool:
    """Whether this process's resident memory now exceeds ``max_rss_mib``."""
    if not max_rss_mib:
        return False
    try:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return rss > max_rss_mib * 1024 * 1024
