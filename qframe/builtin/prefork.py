"""The default process manager: ``multiprocessing`` with a configurable start method.

``start_method`` is ``fork`` (the default: fastest start), ``forkserver`` or ``spawn``.
Every child rebuilds its plugin manager and drivers from the picklable configuration, so
the three behave the same. Channels are Unix sockets; a timed-out worker is SIGKILLed.
POSIX-only, like the rest of the cluster.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from qframe.builtin.sockets import SocketHub, connect
from qframe.config import Config
from qframe.processes import Channel, ChildProcess, Hub, ProcessManager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class PreforkManager(ProcessManager):
    """Each child is a ``multiprocessing.Process`` started with ``config.start_method``."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.context = multiprocessing.get_context(config.start_method)
        self._children: list[multiprocessing.process.BaseProcess] = []

    def spawn(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> ChildProcess:
        """Start ``target(*args)`` in a new process."""
        process = self.context.Process(target=target, args=args, name=name, daemon=False)  # type: ignore[attr-defined]
        if self.context.get_start_method() == "fork":
            start_with_shared_heap(process)
        else:
            process.start()
        self._children = [child for child in self._children if child.is_alive()]
        self._children.append(process)
        return process  # type: ignore[no-any-return]

    def wait(
        self, children: Sequence[ChildProcess], channels: Sequence[Channel], timeout: float | None
    ) -> list[Any]:
        """Wait on the processes' sentinels and the channels together."""
        by_sentinel = {child.sentinel: child for child in children}  # type: ignore[attr-defined]
        ready = multiprocessing.connection.wait([*channels, *by_sentinel], timeout)  # type: ignore[list-item]
        return [by_sentinel.get(obj, obj) for obj in ready]

    def orphan_check(self) -> Callable[[], bool]:
        """True once this process was re-parented: its parent (or the parent's forkserver) died."""
        parent = os.getppid()
        return lambda: os.getppid() != parent

    def kill(self, child: ChildProcess) -> None:
        """SIGKILL the child and reap it."""
        child.kill()  # type: ignore[attr-defined]
        child.join(5)

    def kill_all(self) -> None:
        """SIGKILL every child started here that still runs."""
        for child in self._children:
            if child.is_alive():
                child.kill()
                child.join(5)

    def pipe(self, duplex: bool = True) -> tuple[Channel, Channel]:
        """An OS pipe (or socket pair when duplex)."""
        return self.context.Pipe(duplex)

    def listen(self, address: str, authkey: bytes) -> Hub:
        """A Unix-socket hub."""
        return SocketHub(address, authkey)

    def connect(
        self, address: str, authkey: bytes, give_up: Callable[[], bool], timeout: float = 60.0
    ) -> Channel:
        """A Unix-socket connection to a hub."""
        return connect(address, authkey, give_up, timeout)

    def on_stop_signals(self, handler: Callable[[], None]) -> Callable[[], None]:
        """Install SIGTERM/SIGINT handlers that only call ``handler`` (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.signal(sig, lambda signum, frame: handler()) for sig in STOP_SIGNALS}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def ignore_stop_signals(self) -> None:
        """Children ignore SIGTERM/SIGINT: the main process runs the orderly stop for them."""
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)

    def enforce_timeout(self, pid: int, channel: Channel, ack_id: str) -> None:
        """SIGKILL the worker process (a CPU loop, a sleep and a blocked read all stop)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start_with_shared_heap(process: multiprocessing.process.BaseProcess) -> None:
    """Fork ``process`` with every object of this process frozen (:func:`gc.freeze`) in the child.

    A forked child shares the parent's pages until it writes to them, and a full garbage
    collection writes to every tracked object it visits. Frozen, the inherited objects are
    never visited by the child's collector, so their pages stay shared (lower PSS and USS).
    The parent unfreezes at once and collects its own garbage as before. A heap frozen
    already is left as it is: the sentinel, which forks the pusher, the monitor and the
    workers, inherited the main process's frozen heap, and an application may freeze its own.
    """
    if gc.get_freeze_count():  # frozen already (the sentinel inherits the main's freeze, or the app froze)
        process.start()
        return
    gc.freeze()
    try:
        process.start()
    finally:
        gc.unfreeze()
