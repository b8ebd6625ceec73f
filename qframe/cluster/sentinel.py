"""The sentinel: starts the cluster's processes, guards them, and stops them in order."""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qframe.brokers.base import Broker
from qframe.cluster.context import Context, boot
from qframe.cluster.delays import release_due
from qframe.cluster.footprint import FootprintMeter
from qframe.cluster.gauges import Throughput, read_gauges
from qframe.cluster.monitor import run_monitor
from qframe.cluster.outage import EXIT_OUTAGE, OutageClock
from qframe.cluster.pusher import run_pusher
from qframe.cluster.scheduling import SchedulerTicker
from qframe.cluster.stat import Stat, StatusWriter
from qframe.cluster.worker import run_worker
from qframe.drivers import make_broker, make_store
from qframe.errors import BrokerError, QFrameError
from qframe.processes import Channel, ChildProcess
from qframe.stores.base import Store

log = logging.getLogger("qframe")

START_DEADLINE = 30.0

#: What the sentinel tells the main process when the broker stayed away past ``max_outage``.
OUTAGE = "outage"
#: Seconds the sentinel waits for the main process to start the stop procedure after
#: reporting an outage; past that (nobody watches, e.g. ``Cluster.start()`` from an
#: application) it stops the cluster itself.
OUTAGE_REPLY_WAIT = 5.0


def process_name() -> str:
    """A unique process name in the seed's shape (``Process-<hex>``)."""
    return f"Process-{uuid.uuid4().hex}"


@dataclass
class Child:
    """A started child process and, for pusher and monitor, the pipe that commands it."""

    role: str
    process: ChildProcess
    control: Channel | None = None
    index: int = 0


class Sentinel:
    """Guards one cluster: replaces dead children, publishes status, runs the stop procedure."""

    def __init__(self, context: Context, name: str, control: Channel, parent: int) -> None:
        self.context = context
        self.config = context.config
        self.name = name
        self.control = control
        self.parent = parent
        self.workers: list[Child] = []
        self.stat = Stat(context.cluster_id, self.config.name, socket.gethostname(), parent, os.getpid())
        self.stat.configured_workers = self.config.workers
        self.footprint = FootprintMeter()
        self.throughput = Throughput()
        self.status = StatusWriter(self.config, context.keys)
        self._broker: Broker | None = None
        self._store: Store | None = None
        self.outage = OutageClock(name, self.config.max_outage)

    @property
    def broker(self) -> Broker:
        """The sentinel's broker connection, opened on first use after the last spawn."""
        if self._broker is None:
            self._broker = make_broker(self.config)
        return self._broker

    @property
    def store(self) -> Store:
        """The sentinel's store connection (held delays), opened on first use after the last spawn."""
        if self._store is None:
            self._store = make_store(self.config)
        return self._store

    def disconnect(self) -> None:
        """Close every driver connection, so that no connection is copied into a fork.

        Each reopens on its next use: broker, store, status store, and the scheduler's client.
        """
        self.status.close()
        if hasattr(self, "scheduler"):
            self.scheduler.close()
        if self._broker is not None:
            self._broker.close()
            self._broker = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def run(self) -> None:
        """Start everything, report ``running`` to the main process, guard, then stop."""
        runtime = boot(self.context, "sentinel", self.name)
        self.hooks, self.processes = runtime.hooks, runtime.processes
        self.orphaned = self.processes.orphan_check()
        if note := self.processes.startup_note():
            log.info("%s", note)
        self.scheduler = SchedulerTicker(self.config, self.hooks.pm)  # a wrong name fails before any spawn
        self.workers = [self.spawn_worker(index) for index in range(self.config.workers)]
        self.monitor = self.spawn_commanded("monitor", run_monitor)
        log.info("%s guarding cluster at %s", self.name, os.getpid())
        self.pusher = self.spawn_commanded("pusher", run_pusher)
        try:
            for warning in self.broker.warnings():
                log.warning("%s", warning)
        except BrokerError as exc:
            log.warning("could not check the broker's configuration: %s", exc)
        self.control.send("running")
        self.guard()
        if self.outage.tripped:
            self.report_outage()
        self.stop()
        if self.outage.tripped:
            raise SystemExit(EXIT_OUTAGE)

    # -- starting ------------------------------------------------------------------------
    def start(self, role: str, target: Callable[..., None], *args: Any) -> ChildProcess:
        """Start a child and wait until it reports ready."""
        self.disconnect()
        name = process_name()
        ready_r, ready_w = self.processes.pipe(duplex=False)
        process = self.processes.spawn(target, (self.context, name, ready_w, *args), name)
        ready_w.close()
        if not ready_r.poll(START_DEADLINE):
            self.processes.kill(process)
            raise QFrameError(f"{role} {name} did not start within {START_DEADLINE:g} s")
        try:
            ready_r.recv()
        except EOFError:
            process.join(5)
            raise QFrameError(f"{role} {name} exited while starting (exit code {process.exitcode})") from None
        ready_r.close()
        self.hooks.process_spawned(role, name, process.pid or 0)
        return process

    def spawn_worker(self, index: int) -> Child:
        """Start worker number ``index`` (its number picks its CPUs)."""
        return Child("worker", self.start("worker", run_worker, index), index=index)

    def spawn_commanded(self, role: str, target: Callable[..., None]) -> Child:
        """Start the pusher or the monitor with a command pipe."""
        command_r, command_w = self.processes.pipe(duplex=False)
        process = self.start(role, target, command_r)
        command_r.close()
        return Child(role, process, command_w)

    # -- guarding ------------------------------------------------------------------------
    def guard(self) -> None:
        """Replace a child the moment it exits; every ``guard_cycle``, publish status and tick."""
        next_tick = time.monotonic()
        while True:
            children = [child.process for child in (*self.workers, self.pusher, self.monitor)]
            timeout = max(0.0, next_tick - time.monotonic())
            ready = self.processes.wait(children, [self.control], timeout)
            if self.control in ready:
                try:
                    if self.control.recv() == "stop":
                        return
                except EOFError:
                    log.error("%s lost the cluster's main process; stopping", self.name)
                    return
            if self.orphaned():
                log.error("%s: the cluster's main process died; stopping", self.name)
                return
            self.reincarnate()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.config.guard_cycle
                self.publish("Working" if self.broker_sizes()[1] else "Idle")
                if self.outage.check():
                    return
                self.hooks.sentinel_tick(self.stat, self.config)
                self.scheduler.tick()
                release_due(self.store, self.broker, time.time())

    def reincarnate(self) -> None:
        """Replace every child that exited."""
        for position, child in enumerate(self.workers):
            if child.process.is_alive():
                continue
            child.process.join(0)
            code = child.process.exitcode
            if code == 0:
                log.info("%s recycled worker %s", self.name, child.process.name)
            else:
                log.critical(
                    "reincarnated worker %s after death (%s)", child.process.name, describe_exit(code)
                )
            self.stat.reincarnations += 1  # every replacement: deaths, timeouts, recycles, max_rss
            self.workers[position] = self.spawn_worker(child.index)
        for role in ("pusher", "monitor"):
            child = getattr(self, role)
            if not child.process.is_alive():
                child.process.join(0)
                log.critical(
                    "reincarnated %s %s after sudden death (%s)",
                    role,
                    child.process.name,
                    describe_exit(child.process.exitcode),
                )
                self.stat.reincarnations += 1
                setattr(
                    self, role, self.spawn_commanded(role, run_pusher if role == "pusher" else run_monitor)
                )

    def broker_sizes(self) -> tuple[int, int]:
        """Queued and leased messages (zeros when the broker is unreachable: an outage)."""
        try:
            sizes = self.broker.queue_size(), self.broker.lock_size()
        except BrokerError:
            self.outage.failed()
            return 0, 0
        self.outage.answered()
        return sizes

    def report_outage(self) -> None:
        """Tell the main process, and give it time to start the stop procedure in the seed's order."""
        try:
            self.control.send(OUTAGE)
            if self.control.poll(OUTAGE_REPLY_WAIT):
                self.control.recv()
        except (OSError, EOFError):
            pass  # the main process is gone: stop all the same

    def publish(self, status: str) -> None:
        """Save the cluster's signed status heartbeat in the status store."""
        stat = self.stat
        stat.status, stat.timestamp = status, time.time()
        stat.pusher, stat.monitor = self.pusher.process.pid or 0, self.monitor.process.pid or 0
        stat.workers = [child.process.pid or 0 for child in self.workers if child.process.is_alive()]
        stat.workers_alive = len(stat.workers)
        stat.children_alive = stat.workers_alive == len(self.workers) and all(
            child.process.is_alive() for child in (self.pusher, self.monitor)
        )
        stat.queued, stat.leased = self.broker_sizes()
        stat.broker_reachable = self.outage.since is None
        self.measure()
        for extra in self.hooks.collect_status(stat):
            stat.extra.update(extra)
        try:
            self.status.write(stat, max(3.0, 3 * self.config.guard_cycle))
        except BrokerError as exc:
            log.debug("could not publish status: %s", exc)

    def measure(self) -> None:
        """Fill the status with the pusher's and monitor's counts and the memory footprint."""
        stat = self.stat
        rundir = self.context.rundir
        pusher, monitor = read_gauges(rundir, "pusher"), read_gauges(rundir, "monitor")
        stat.prefetched = pusher.get("prefetched", 0)
        stat.tasks_per_second = self.throughput.add(pusher.get("finished", 0))
        stat.processed = self.throughput.total
        stat.results_pending = monitor.get("results_pending", 0)
        footprint = self.footprint.measure([stat.sentinel, stat.pusher, stat.monitor, *stat.workers])
        stat.memory_available, stat.memory_total = footprint.available, footprint.total
        stat.memory_lowest_available, stat.rss = footprint.lowest_available, footprint.rss

    # -- stopping ------------------------------------------------------------------------
    def stop(self) -> None:
        """The stop procedure: pusher, then workers (within ``grace``), then monitor."""
        log.info("%s stopping cluster processes", self.name)
        self.publish("Stopping")
        self.command(self.pusher, "stop")
        deadline = time.monotonic() + self.config.grace
        for child in self.workers:
            child.process.join(max(0.0, deadline - time.monotonic()))
        for child in self.workers:
            if child.process.is_alive():
                log.warning(
                    "%s still busy after %g s of grace; killing it "
                    "(its task is handed back, or failed on its last attempt)",
                    child.process.name,
                    self.config.grace,
                )
                self.processes.kill(child.process)
        self.command(self.pusher, "exit")
        self.finish(self.pusher)
        self.command(self.monitor, "stop")
        self.finish(self.monitor)
        self.publish("Stopped")
        self.disconnect()

    def kill_children(self) -> None:
        """Kill every child started so far (after a failure, so none outlives the sentinel)."""
        if hasattr(self, "processes"):
            self.processes.kill_all()

    def command(self, child: Child, command: str) -> None:
        """Send a command to the pusher or monitor, if it still listens."""
        try:
            if child.control is not None:
                child.control.send(command)
        except OSError:
            pass

    def finish(self, child: Child, timeout: float = 15.0) -> None:
        """Wait for a child to exit; kill it past ``timeout``."""
        child.process.join(timeout)
        if child.process.is_alive():
            log.error("%s %s did not exit in %g s; killing it", child.role, child.process.name, timeout)
            self.processes.kill(child.process)


def describe_exit(code: int | None) -> str:
    """Words for an exit code (negative codes are signals)."""
    if code is None:
        return "still running"
    if code < 0:
        name = signal.Signals(-code).name
        hint = ": a timeout, the OOM killer or kill -9" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"


def run_sentinel(context: Context, name: str, control: Channel, parent: int) -> None:
    """The sentinel process's main function."""
    sentinel = Sentinel(context, name, control, parent)
    try:
        sentinel.run()
    except Exception as exc:
        log.critical("%s failed: %s", name, exc)
        sentinel.kill_children()
        raise SystemExit(1) from exc
