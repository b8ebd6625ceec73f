"""``qframe cluster --pidfile PATH``: the cluster's main pid in a file while it runs.

The file is claimed before anything starts: a pidfile naming a live process stops the
start with one line; one left behind by a dead process is taken over. The pid is written
once the cluster runs (so the file's presence means "running"), atomically, and the file
is removed when the cluster exits, if it still names this process.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from qframe.errors import QFrameError
from qframe.hookspecs import hookimpl

if TYPE_CHECKING:
    from qframe.cluster.cluster import Cluster

log = logging.getLogger("qframe")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user's counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path) -> int | None:
    """The pid in ``path``; None when the file is missing, empty or not a pid."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


class PidFile:
    """The pidfile of this process; registered as a hook plugin of the cluster's main process."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()
        self.pid = os.getpid()

    def claim(self) -> None:
        """Check that the file may be written; raise QFrameError when a live process holds it."""
        holder = read_pid(self.path)
        if holder is not None and holder != self.pid and pid_alive(holder):
            raise QFrameError(f"pidfile {self.path} belongs to running process {holder}; not starting")
        if holder is not None:
            log.info("replacing the stale pidfile %s of process %d, which is gone", self.path, holder)
        directory = self.path.parent
        if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
            raise QFrameError(f"cannot write pidfile {self.path}: {directory} is not a writable directory")

    def write(self) -> None:
        """Write this process's pid, atomically (a reader never sees a half-written file)."""
        partial = self.path.with_name(f".{self.path.name}.{self.pid}")
        partial.write_text(f"{self.pid}\n")
        os.replace(partial, self.path)

    def remove(self) -> None:
        """Remove the file if it still names this process."""
        if read_pid(self.path) == self.pid:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    @hookimpl
    def qframe_cluster_started(self, cluster: Cluster) -> None:
        """Write the pid once every cluster process runs."""
        try:
            self.write()
        except OSError as exc:
            log.error("cannot write pidfile %s: %s", self.path, exc)
