"""The monitor: saves results to the store, then settles their deliveries with the broker.

Saving comes first: if the store fails, nothing is acknowledged; the outcomes are kept
(:mod:`qframe.cluster.unsaved`), with their leases renewed, and saved when the store
answers again. Outcome hooks and each task's own ``hook`` run after the save and the
settle, in the monitor's hook thread (:mod:`qframe.cluster.hookrunner`), so a slow hook
never delays the saving of other results.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

from qframe.client import Client
from qframe.cluster.collate import collate
from qframe.cluster.context import Context, boot
from qframe.cluster.deadletters import quarantine
from qframe.cluster.gauges import GaugeWriter
from qframe.cluster.hookrunner import HookRunner
from qframe.cluster.outcome import Outcome
from qframe.cluster.retries import enqueue_again
from qframe.cluster.unsaved import Unsaved
from qframe.drivers import make_broker, make_store
from qframe.processes import Channel
from qframe.stores.base import DeadLetter
from qframe.task import Task, TaskResult, resolve

log = logging.getLogger("qframe")

OUTCOME_HOOKS = ("task_succeeded", "task_failed", "task_timed_out", "task_retrying")
#: Seconds after "stop" the monitor keeps saving the results still arriving.
DRAIN = 10.0
#: Seconds after "stop" by which the hooks still waiting must have run (the sentinel waits 15 s).
HOOK_STOP_WAIT = 14.0


class Monitor:
    """The monitor process."""

    def __init__(self, context: Context, name: str, control: Channel) -> None:
        self.context = context
        self.name = name
        self.control = control
        self.codec = context.result_codec()
        self.outage = False

    def run(self, ready: Channel) -> None:
        """Save and settle outcomes until told to stop and the pusher has gone."""
        runtime = boot(self.context, "monitor", self.name)
        self.hooks = runtime.hooks
        self.broker = make_broker(self.context.config)
        self.store = make_store(self.context.config)
        self.unsaved = Unsaved(self.broker, self.context.config.lease)
        self.client = Client(self.context.config, self.hooks.pm)  # enqueues chains' next links
        self.listening = self.hooks.implemented(*OUTCOME_HOOKS)
        self.hook_runner = HookRunner(self.name, self.run_hooks)
        hub = runtime.processes.listen(self.context.monitor_address, self.context.authkey)
        log.info("%s monitoring at %s", self.name, os.getpid())
        ready.send(os.getpid())
        ready.close()
        hub.watch(self.control)
        orphaned = runtime.processes.orphan_check()
        gauges = GaugeWriter(self.context.rundir, "monitor", self.context.config.guard_cycle)
        reported: int | None = None  # write at start: a replaced monitor may have left a count
        deadline = None
        while not orphaned() and (
            deadline is None or ((hub.connections or self.unsaved.kept) and time.monotonic() < deadline)
        ):
            _, ready_objects = hub.wait(max(0.0, min(1.0, self.unsaved.due() - time.monotonic())))
            pending: list[Outcome] = []
            for obj in ready_objects:
                if obj is self.control:
                    deadline = time.monotonic() + DRAIN
                    hub.unwatch(self.control)
                    continue
                try:
                    pending.extend(map(Outcome.unpack, obj.recv()))
                    while obj.poll():  # drain: the busier the cluster, the bigger the batch
                        pending.extend(map(Outcome.unpack, obj.recv()))
                except (EOFError, OSError):
                    hub.drop(obj)
            if self.unsaved.kept:  # the store is down: keep new outcomes and try it every RETRY s
                self.unsaved.add(pending)
                if self.unsaved.retry_due():
                    self.settle(self.unsaved.take())
                self.unsaved.renew()
            elif pending:
                self.settle(pending)
            kept = len(self.unsaved.kept)
            if kept != reported and (gauges.due() or not kept):  # back to 0 at once, when saves resume
                reported = kept
                gauges.write(results_pending=reported)
        if self.unsaved.kept:
            log.error(
                "%s stopped with %d results unsaved (their tasks will run again)",
                self.name,
                len(self.unsaved.kept),
            )
        # The sentinel kills a monitor 15 s after "stop": the hooks still waiting get what is left of 14 s.
        stopped_at = time.monotonic() if deadline is None else deadline - DRAIN
        self.hook_runner.close(max(0.0, stopped_at + HOOK_STOP_WAIT - time.monotonic()))
        hub.close()
        log.info("%s stopped monitoring results", self.name)

    def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Save results, then ack, nack or quarantine their deliveries, then queue their hooks."""
        saves = [(o.meta, o.blob) for o in outcomes if o.save and o.meta is not None and o.blob is not None]
        try:
            if saves:
                self.store.save_many(saves)
        except Exception as exc:
            if not self.outage:  # one line per outage, not one per batch
                log.error(
                    "could not save results (kept, their leases renewed, until the store answers): %s", exc
                )
            self.outage = True
            self.unsaved.keep(outcomes)
            return
        if self.outage:
            log.info("%s reached the store again", self.name)
            self.outage = False
        letters: list[DeadLetter] = []
        try:
            for o in outcomes:
                if o.settle == "retry" and o.payload is not None:
                    enqueue_again(self.broker, self.store, o.payload, o.delay)
                if o.follow is not None:
                    self.client.enqueue(Task.from_dict(o.follow))
            for iterator in dict.fromkeys(o.collate for o in outcomes if o.collate is not None):
                collate(self.store, self.codec, *iterator)  # before the ack: a failure runs it again
            self.broker.ack_many([o.ack_id for o in outcomes if o.settle in ("ack", "retry")])
            for o in outcomes:
                if o.settle == "nack":
                    self.broker.nack(o.ack_id)
                elif o.settle in ("quarantine", "dead"):
                    letters.append(self.set_aside(o))
        except Exception as exc:
            log.error(
                "could not settle %d deliveries (their leases will return them): %s", len(outcomes), exc
            )
        for letter in letters:
            self.hooks.task_dead_lettered(self.broker.queue, letter)
        for o in outcomes:
            if o.blob is not None and (self.listening or o.hook):
                self.hook_runner.submit(o)

    def run_hooks(self, outcome: Outcome) -> None:
        """Decode one outcome's result and call its hooks (in the hook thread)."""
        assert outcome.blob is not None  # settle queues only outcomes with a result
        result = TaskResult.from_dict(self.codec.decode(outcome.blob))
        result.client = self.client
        self.call_hooks(outcome, result)

    def set_aside(self, outcome: Outcome) -> DeadLetter:
        """Move a quarantine or dead outcome's delivery to the dead letters (after its failure was saved)."""
        assert outcome.message is not None  # every quarantine and dead outcome carries its delivery
        if outcome.settle == "dead":
            attempts = outcome.meta.attempts if outcome.meta is not None else outcome.message.attempts
            log.error("moved message %s to dead letters: %s", outcome.message.message_id, outcome.reason)
            return quarantine(
                self.broker, self.store, outcome.message, outcome.reason, attempts, outcome.last_error
            )
        log.error("moved delivery %s to dead letters: %s", outcome.ack_id, outcome.reason)
        return quarantine(self.broker, self.store, outcome.message, outcome.reason)

    def call_hooks(self, outcome: Outcome, result: TaskResult) -> None:
        """Fire the outcome hooks and the task's own hook for one result."""
        if outcome.settle in ("nack", "retry"):
            self.hooks.task_retrying(result)
            return
        if result.success:
            self.hooks.task_succeeded(result)
        else:
            if outcome.timed_out is not None:
                self.hooks.task_timed_out(result, outcome.timed_out)
            self.hooks.task_failed(result)
        if outcome.hook:
            try:
                resolve(outcome.hook)(result)
            except Exception as exc:
                log.error(
                    "return hook %s failed on [%s] because %s: %s",
                    outcome.hook,
                    result.name,
                    type(exc).__name__,
                    exc,
                )


def run_monitor(context: Context, name: str, ready: Channel, control: Channel) -> None:
    """The monitor process's main function."""
    Monitor(context, name, control).run(ready)
