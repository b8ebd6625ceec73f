"""The ProcessManager ABC: everything about the life of the cluster's processes.

The cluster's roles (``qframe/cluster/*.py``) never fork, signal or kill anything
themselves: they ask the process manager, a ``qframe.process_managers`` driver chosen by
the ``process_manager`` option. It starts children, tells when one ended, kills them,
carries the channels between roles, installs the stop signals and applies the timeout
policy. ``qframe.testing.ProcessManagerContract`` checks a manager against all of this.
"""

from __future__ import annotations

import abc
import pickle
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from qframe.config import Config

if TYPE_CHECKING:  # asyncio loads in the worker that first runs an async def task, not in every process
    import asyncio


class Channel(Protocol):
    """One end of a connection between two cluster processes (messages are pickled)."""

    def send(self, obj: Any) -> None:
        """Send one message."""

    def recv(self) -> Any:
        """Receive one message; raise EOFError when the other end closed."""

    def poll(self, timeout: float | None = 0.0) -> bool:
        """Whether a message can be received within ``timeout`` seconds."""

    def fileno(self) -> int:
        """A file descriptor that becomes readable when a message arrives."""

    def close(self) -> None:
        """Close this end."""


def send_plain(channel: Channel, message: object) -> None:
    """Send ``message``, plain data (tuples, lists, strings, bytes, numbers), on ``channel``.

    ``multiprocessing``'s ``Connection.send`` pickles with ``ForkingPickler``, which copies
    its table of reducers (for sockets and connections) on every call: 7.4 µs against
    4.3 µs for ``pickle.dumps`` of one outcome. Messages of the task path carry none of
    those, so they are pickled here and sent as bytes; the other end's ``recv`` reads
    them as any message. A channel without ``send_bytes`` gets ``send``.
    """
    send_bytes = getattr(channel, "send_bytes", None)
    if send_bytes is None:
        channel.send(message)
    else:
        send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))


class Hub(Protocol):
    """Where one role (pusher, monitor) listens for connections from the others."""

    #: The connections accepted and not yet dropped.
    connections: list[Channel]

    def watch(self, obj: Any) -> None:
        """Also wait for ``obj`` (a :class:`Channel`) to become readable."""

    def unwatch(self, obj: Any) -> None:
        """Stop waiting for ``obj``."""

    def wait(self, timeout: float | None) -> tuple[list[Channel], list[Any]]:
        """Wait for input; return ``(new connections, readable objects)``."""

    def wake(self) -> None:
        """Make a pending :meth:`wait` return (safe from any thread)."""

    def drop(self, connection: Channel) -> None:
        """Forget a connection that reached its end."""

    def close(self) -> None:
        """Stop listening."""


class ChildProcess(Protocol):
    """A started child, as the sentinel sees it."""

    name: str

    @property
    def pid(self) -> int | None:
        """The process id once started."""

    @property
    def exitcode(self) -> int | None:
        """None while running; negative for death by signal."""

    def is_alive(self) -> bool:
        """Whether the process runs."""

    def join(self, timeout: float | None = None) -> None:
        """Wait for the process to exit."""


class ProcessManager(abc.ABC):
    """Starts, watches, connects and stops the cluster's processes."""

    def __init__(self, config: Config) -> None:
        self.config = config

    # -- children ------------------------------------------------------------------------
    @abc.abstractmethod
    def spawn(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> ChildProcess:
        """Start ``target(*args)`` in a new process called ``name``.

        ``target`` is a module-level function and ``args`` pickle (a :class:`Channel` end
        included), so that every start method can carry them into the child.
        """

    @abc.abstractmethod
    def wait(
        self, children: Sequence[ChildProcess], channels: Sequence[Channel], timeout: float | None
    ) -> list[Any]:
        """Wait until a child ends or a channel is readable; return those ready."""

    @abc.abstractmethod
    def orphan_check(self) -> Callable[[], bool]:
        """A function telling whether the process that started this one has gone.

        Call it at boot; every cluster process stops by itself once it turns True, so a
        cluster whose main process was killed leaves nothing running.
        """

    @abc.abstractmethod
    def kill(self, child: ChildProcess) -> None:
        """Stop ``child`` at once (SIGKILL for processes); its task is handed back."""

    @abc.abstractmethod
    def kill_all(self) -> None:
        """Kill every child this manager started in this process (after a failed start)."""

    # -- channels ------------------------------------------------------------------------
    @abc.abstractmethod
    def pipe(self, duplex: bool = True) -> tuple[Channel, Channel]:
        """A connected pair whose ends can be passed to :meth:`spawn`."""

    @abc.abstractmethod
    def listen(self, address: str, authkey: bytes) -> Hub:
        """A :class:`Hub` at ``address`` (a path in the cluster's private run directory)."""

    @abc.abstractmethod
    def connect(
        self, address: str, authkey: bytes, give_up: Callable[[], bool], timeout: float = 60.0
    ) -> Channel:
        """Connect to the hub at ``address``, retrying while it (re)starts, for up to ``timeout`` s."""

    # -- signals and timeouts --------------------------------------------------------------
    @abc.abstractmethod
    def on_stop_signals(self, handler: Callable[[], None]) -> Callable[[], None]:
        """Call ``handler`` on SIGTERM/SIGINT in this process; return a function that undoes it.

        Only the main thread can install signal handlers: elsewhere (a cluster started from
        a thread of an application) nothing is installed and stopping is up to the caller.
        """

    @abc.abstractmethod
    def ignore_stop_signals(self) -> None:
        """In a cluster child: let SIGTERM/SIGINT sent to the process group reach only the main process."""

    @abc.abstractmethod
    def enforce_timeout(self, pid: int, channel: Channel, ack_id: str) -> None:
        """The task ``ack_id`` that worker ``pid`` runs went past its timeout: stop it.

        Called in the pusher, with the pusher's end of the worker lane's ``channel``. A
        manager stops the process (``prefork``: SIGKILL), or sends ``("timeout", ack_id)``
        on ``channel`` so that the lane abandons the task (:meth:`lane_timed_out`). Either
        way the lane's channel then ends, and the pusher records the task as timed out.
        """

    # -- lanes: what one worker process runs at once ---------------------------------------
    def run_lanes(self, lane: Callable[[int], None]) -> None:
        """In a worker process: run ``lane(index)`` for each lane; return when all returned.

        A lane takes one task at a time over its own channel to the pusher, so the pusher
        sees each lane as a worker. The default is one lane, run in the calling thread.
        """
        lane(0)

    def lane_timed_out(self, index: int) -> None:  # noqa: B027 (optional: most managers kill instead)
        """In a worker process: lane ``index`` was told its task timed out and let go of it.

        The lane's channel is already closed and the lane will not report the task. The
        manager stops the task if it can, starts a new lane ``index``, and replaces the
        process if the abandoned task does not return. The default does nothing (the
        default ``enforce_timeout`` kills the process instead).
        """

    def run_awaitable(self, awaitable: Awaitable[Any]) -> Any:
        """Run what an ``async def`` task returned to completion and return its result.

        The default keeps one event loop per lane thread across tasks (so loop-bound
        clients cached by a task module keep working), via :class:`asyncio.Runner`.
        """
        import asyncio

        runner: asyncio.Runner | None = getattr(_thread_loops, "runner", None)
        if runner is None:
            runner = _thread_loops.runner = asyncio.Runner()
        return runner.run(_as_coroutine(awaitable))

    def startup_note(self) -> str | None:
        """One line the sentinel logs at start: how per-worker options apply under this manager."""
        return None


_thread_loops = threading.local()


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    """Any awaitable as a coroutine (``asyncio.Runner.run`` takes coroutines only)."""
    return await awaitable
