"""A worker process: each of its lanes runs the tasks the pusher hands it, one at a time, and reports them."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import resource
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from qframe.brokers.base import Message
from qframe.cluster.context import Context, Runtime, boot
from qframe.cluster.mailbox import Mailbox
from qframe.cluster.outcome import Outcome, attempt_limit, dead, outcome
from qframe.cluster.retries import out_of_retries, retried
from qframe.config import Config
from qframe.current import CurrentTask, reset_current, set_current
from qframe.hooks import Hooks
from qframe.processes import Channel, send_plain
from qframe.serialize import Codec
from qframe.task import Task, TaskResult, resolve

log = logging.getLogger("qframe")


def run_worker(context: Context, name: str, ready: Channel, index: int) -> None:
    """The worker process's main function.

    The process manager runs the process's lanes (:meth:`ProcessManager.run_lanes`: one
    under ``prefork``); each lane is a :class:`WorkerProcess` ``lane``.
    """
    runtime = boot(context, "worker", name)
    pin_cpus(index, context.config.cpu_affinity)
    worker = WorkerProcess(context, runtime, name)
    log.info("%s ready for work at %s", name, os.getpid())
    ready.send(os.getpid())
    ready.close()
    runtime.processes.run_lanes(worker.lane)
    log.info("%s stopped doing work", name)


class WorkerProcess:
    """One worker process: its lanes, and the quota (``recycle``, ``max_rss``) they share.

    Each lane has its own connection to the pusher. The pusher sends batches of
    deliveries; the lane runs them in order, sends each outcome to the monitor and then
    tells the pusher ``done``, so the pusher always knows which delivery runs now. A
    :class:`Mailbox` thread reads the pusher's messages while a task runs, so the pusher
    can take back deliveries this lane has not started. Once the process reaches its
    quota every lane leaves after its current task and the process exits with 0.
    """

    def __init__(self, context: Context, runtime: Runtime, name: str) -> None:
        self.context = context
        self.runtime = runtime
        self.name = name
        self.config = context.config
        self.codec, self.results = context.codec(), context.result_codec()
        self.orphaned = runtime.processes.orphan_check()
        self._lock = threading.Lock()
        self._mailboxes: dict[int, Mailbox] = {}
        self.done = 0
        self.retiring = False

    def lane(self, index: int) -> None:
        """Take and run tasks over one connection to the pusher until stopped or retired."""
        processes = self.runtime.processes
        lane_name = self.name if index == 0 else f"{self.name}.{index}"
        pusher: Mailbox | None = None
        monitor: Channel | None = None
        while True:
            try:
                if pusher is None:
                    address, authkey = self.context.pusher_address, self.context.authkey
                    channel = processes.connect(address, authkey, self.orphaned)
                    pusher = Mailbox(channel, functools.partial(processes.lane_timed_out, index))
                    with self._lock:
                        self._mailboxes[index] = pusher
                        if self.retiring:
                            pusher.retire()
                    pusher.send(("hello", os.getpid(), lane_name))
                work = pusher.next()
                if work is None:
                    if pusher.retired:
                        pusher.send(("bye",))
                    break
                result = execute(
                    self.codec, self.results, self.runtime.hooks, self.config, *work, processes.run_awaitable
                )
                if not pusher.finished():
                    return  # timed out: the pusher records it; the manager started another lane
                monitor = report(self.context, self.runtime, monitor, result)
                pusher.send(("done",))
                if self.count_done():
                    pusher.send(("bye",))
                    return  # the process exits with 0 once every lane left: the sentinel replaces it
            except (EOFError, OSError):
                if pusher is not None and pusher.timed_out:
                    return
                pusher = None  # the pusher died; the sentinel starts another at the same address
                if self.orphaned():
                    break

    def count_done(self) -> bool:
        """Count a finished task; True once the process reached its quota (then all lanes retire)."""
        with self._lock:
            self.done += 1
            quota = self.config.recycle and self.done >= self.config.recycle
            if not self.retiring and (quota or over_memory(self.config.max_rss)):
                self.retiring = True
                for mailbox in self._mailboxes.values():
                    mailbox.retire()
            return self.retiring


def report(context: Context, runtime: Runtime, monitor: Channel | None, result: Outcome) -> Channel | None:
    """Send an outcome to the monitor; if that fails, the delivery's lease brings the task back."""
    try:
        monitor = monitor or runtime.processes.connect(
            context.monitor_address, context.authkey, lambda: False, timeout=5
        )
        send_plain(monitor, [result.pack()])
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
    run_awaitable: Callable[[Awaitable[Any]], Any] | None = None,
) -> Outcome:
    """Decode and run one task through ``qframe_execute_task``; never raises.

    What an ``async def`` task returns is run to completion by ``run_awaitable`` (the
    process manager's :meth:`~qframe.processes.ProcessManager.run_awaitable`).
    """
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
        func = resolve_cached(task.func)
        value: Any = hooks.execute_task(task, awaiting(func, run_awaitable) if run_awaitable else func)
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


def awaiting(func: Callable[..., Any], run_awaitable: Callable[[Awaitable[Any]], Any]) -> Callable[..., Any]:
    """``func`` as a plain function: an awaitable it returns is run to its result."""

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        value = func(*args, **kwargs)
        return run_awaitable(value) if inspect.isawaitable(value) else value

    return call


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
