"""The default process manager: ``multiprocessing`` with the ``fork`` start method.

Fork keeps start-up fast and lets children inherit the plugin manager, including plugins
registered in-process. It is POSIX-only, like the rest of the cluster.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from qframe.processes import ChildProcess, ProcessManager


class PreforkManager(ProcessManager):
    """Forks each child from the process that starts it."""

    context = multiprocessing.get_context("fork")

    def start(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> ChildProcess:
        """Fork and start ``target(*args)``."""
        process = self.context.Process(target=target, args=args, name=name, daemon=False)
        process.start()
        return process

    def pipe(self, duplex: bool = True) -> tuple[Connection, Connection]:
        """An OS pipe (or socket pair when duplex)."""
        return self.context.Pipe(duplex)
