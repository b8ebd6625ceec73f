"""The pusher: takes tasks from the broker, checks them, and hands them to idle workers.

It is the one process that knows which delivery each worker holds, so it also keeps
those leases alive, has workers that run past their timeout stopped, and settles a dead
worker's task. Each of those jobs is its own piece: the :class:`Fetcher` thread, the
:class:`Dispatcher`, the :class:`LeaseKeeper`, the :class:`TimeoutWatch` and the
:class:`Outbox`; this module runs them in one loop.
"""

from __future__ import annotations

import logging
import os
import time

from qframe.cluster.context import Context, boot
from qframe.cluster.deliveries import Deliveries
from qframe.cluster.dispatcher import Dispatcher
from qframe.cluster.fetcher import Fetcher, release
from qframe.cluster.gauges import GaugeWriter
from qframe.cluster.leases import LeaseKeeper
from qframe.cluster.outbox import Outbox
from qframe.cluster.timeouts import TimeoutWatch
from qframe.drivers import make_broker
from qframe.processes import Channel

log = logging.getLogger("qframe")


class Pusher:
    """The pusher process."""

    def __init__(self, context: Context, name: str, control: Channel) -> None:
        self.context = context
        self.config = context.config
        self.name = name
        self.control = control
        self.deliveries = Deliveries(self.config)

    def run(self, ready: Channel) -> None:
        """Serve workers until the sentinel says exit."""
        runtime = boot(self.context, "pusher", self.name)
        processes = runtime.processes
        context = self.context
        self.broker = make_broker(self.config)
        hub = processes.listen(context.pusher_address, context.authkey)
        outbox = Outbox(
            self.config,
            context.codec(),
            context.result_codec(),
            lambda: processes.connect(context.monitor_address, context.authkey, lambda: True, 0),
        )
        self.dispatcher = dispatcher = Dispatcher(self.deliveries, self.broker, hub, outbox)
        leases = LeaseKeeper(self.broker, self.deliveries, self.config.lease)
        timeouts = TimeoutWatch(self.config, processes)
        self.fetcher = Fetcher(
            self.name,
            self.config,
            self.deliveries,
            context.codec(),
            lambda: make_broker(self.config),
            hub.wake,
            runtime.hooks,
        )
        self.fetcher.start()
        log.info("%s pushing tasks at %s", self.name, os.getpid())
        ready.send(os.getpid())
        ready.close()
        hub.watch(self.control)
        orphaned = runtime.processes.orphan_check()
        gauges = GaugeWriter(context.rundir, "pusher", self.config.guard_cycle)
        exiting = False
        while not (exiting and not dispatcher.slots) and not orphaned():
            due = min(leases.due, timeouts.next_due(dispatcher.slots.values()), dispatcher.fairness.due())
            arrived, ready_objects = hub.wait(max(0.0, min(due - time.monotonic(), 1.0)))
            for conn in arrived:
                dispatcher.arrived(conn)
            for obj in ready_objects:
                if obj is self.control:
                    exiting = self.on_control()
                    if exiting:
                        hub.unwatch(self.control)
                else:
                    dispatcher.receive(obj)
            dispatcher.hand_out()
            timeouts.enforce(dispatcher.slots)
            leases.renew()
            outbox.flush()
            if gauges.due():
                self.write_gauges(gauges)
        outbox.flush()
        self.broker.close()

    def write_gauges(self, gauges: GaugeWriter) -> None:
        """Hand the sentinel the tasks held but not started, and the tasks finished so far."""
        with self.deliveries.space:
            queued_at_workers = sum(max(0, len(s.assigned) - 1) for s in self.deliveries.slots.values())
            prefetched = len(self.deliveries.waiting) + queued_at_workers
            finished = self.deliveries.finished
        gauges.write(prefetched=prefetched, finished=finished)

    def on_control(self) -> bool:
        """Handle ``stop`` (stop taking tasks) and ``exit`` (leave once workers are gone)."""
        try:
            command: str = self.control.recv()
        except EOFError:
            command = "exit"
        if not self.deliveries.stopping:
            with self.deliveries.space:
                self.deliveries.stopping = True
                self.deliveries.space.notify_all()
            self.fetcher.join(5)
            with self.deliveries.space:
                waiting = list(self.deliveries.waiting)
                self.deliveries.waiting.clear()
            release(self.broker, waiting)
            log.info("%s stopped pushing tasks", self.name)
            self.dispatcher.stop_idle()
        return command == "exit"


def run_pusher(context: Context, name: str, ready: Channel, control: Channel) -> None:
    """The pusher process's main function."""
    Pusher(context, name, control).run(ready)
