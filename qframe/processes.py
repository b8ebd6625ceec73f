"""The ProcessManager ABC: how the cluster starts its child processes."""

from __future__ import annotations

import abc
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

from qframe.config import Config


class ChildProcess(Protocol):
    """The parts of :class:`multiprocessing.Process` the sentinel relies on."""

    name: str

    @property
    def sentinel(self) -> int:
        """A file descriptor that becomes readable when the process ends."""

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

    def kill(self) -> None:
        """Send SIGKILL."""


class ProcessManager(abc.ABC):
    """Starts child processes and the pipes between them (a ``qframe.process_managers`` driver)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    @abc.abstractmethod
    def start(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> ChildProcess:
        """Start ``target(*args)`` in a new process called ``name``."""

    @abc.abstractmethod
    def pipe(self, duplex: bool = True) -> tuple[Connection, Connection]:
        """A connected pair that survives into processes started later."""
