"""Servers that tests start themselves on loopback ports, and the faults they can suffer.

:class:`ServerProcess` runs one server binary on a free port of 127.0.0.1 with its own
data directory and injects the faults the fault tests need: :meth:`~ServerProcess.kill_hard`
(SIGKILL, as a crash or the OOM killer would), :meth:`~ServerProcess.restart` on the same
port and data, :meth:`~ServerProcess.pause` / :meth:`~ServerProcess.resume` (SIGSTOP and
SIGCONT: a frozen server whose port still accepts connections). A driver's tests subclass
it with the command line and a readiness probe; :class:`RedisServer` is the ready-made one.

A server never outlives its test run: it is killed after a fixed ``lifetime``, when the
process that started it exits (``atexit``) and, on Linux, when that process dies
(``PR_SET_PDEATHSIG``). The parent-death signal follows the *thread* that started the
server, so start and restart servers from the main thread.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar, Self

import pytest

#: Seconds a server gets to answer after it was started.
START_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_binary(name: str) -> str:
    """The path of server binary ``name``; skip the test locally, fail it under ``CI=true``."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (the README lists the system packages tests need)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def die_with_parent() -> None:
    """Runs in the child before exec: get SIGKILLed when the starting thread dies (Linux)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ServerProcess:
    """One server process on 127.0.0.1 with a data directory that survives restarts.

    Subclasses give :meth:`command` and, if a TCP connect is not proof enough that the
    server serves, :meth:`answers`. Usable as a context manager (started on entry,
    stopped on exit).
    """

    #: What the server is called in error messages.
    label: ClassVar[str] = "server"
    #: The server keeps its data across :meth:`kill_hard` and :meth:`restart`.
    durable: ClassVar[bool] = True

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        port: int | None = None,
        args: tuple[str, ...] = (),
        lifetime: float = 600.0,
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.args = args
        self.lifetime = lifetime
        self.process: subprocess.Popen[bytes] | None = None
        self._born = time.monotonic()
        self._reaper: threading.Timer | None = None
        directory.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)

    # -- what a subclass describes ---------------------------------------------------------
    def command(self) -> list[str]:
        """The command line that starts the server on :attr:`port` with :attr:`directory`."""
        raise NotImplementedError(f"{type(self).__name__} must say how to start its server")

    def answers(self) -> bool:
        """Whether the server serves now (default: its port accepts a TCP connection)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    @property
    def log(self) -> Path:
        """The server's log file, in its data directory."""
        return self.directory / "server.log"

    @property
    def output(self) -> Path:
        """Where the server's stdout and stderr go (every start appends), in its data directory."""
        return self.directory / "server.out"

    # -- life and faults -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the server process exists (it may be paused)."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> Self:
        """Start the server and wait until it answers; it is killed at the end of its lifetime."""
        left = self.lifetime - (time.monotonic() - self._born)
        if left <= 0:
            raise RuntimeError(f"{self} is past its lifetime of {self.lifetime:g} s")
        with self.output.open("ab") as output:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        self._arm_reaper(left)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self} exited at start:\n{self._log_tail()}")
            if time.monotonic() > deadline:
                self.kill_hard()
                raise RuntimeError(f"{self} did not answer within {START_TIMEOUT:g} s")
            time.sleep(0.02)
        return self

    def kill_hard(self) -> None:
        """SIGKILL the server (paused or not) and wait until its process is gone."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=10)

    def restart(self) -> Self:
        """Kill the server if it runs, then start it again on the same port and data directory."""
        self.kill_hard()
        return self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted and nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server carry on (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 5 s) and disarm its lifetime."""
        if self._reaper is not None:
            self._reaper.cancel()
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
                process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill_hard()
        self.process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __str__(self) -> str:
        return f"{self.label} on port {self.port}"

    # -- plumbing --------------------------------------------------------------------------
    def _signal(self, signum: signal.Signals) -> None:
        if not self.running:
            raise RuntimeError(f"{self} is not running")
        assert self.process is not None
        self.process.send_signal(signum)

    def _arm_reaper(self, seconds: float) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        self._reaper = threading.Timer(seconds, self.kill_hard)
        self._reaper.daemon = True
        self._reaper.start()

    def _log_tail(self) -> str:
        paths = dict.fromkeys((self.log, self.output))  # one file when a subclass logs to stdout
        return "\n".join(path.read_text(errors="replace")[-2000:] for path in paths if path.exists())


class RedisServer(ServerProcess):
    """``redis-server`` with an append-only file fsynced on every write: a restart keeps every write."""

    label = "redis-server"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.directory / "redis.log"

    def command(self) -> list[str]:
        """The command line that starts this server."""
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--dir", str(self.directory),
            "--logfile", str(self.log),
            "--daemonize", "no",
            *self.args,
        ]  # fmt: skip

    def answers(self) -> bool:
        """Whether the server replies ``+PONG`` to an inline ``PING`` (no client library needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
