"""Run a real ``qframe cluster`` in a subprocess, read its log, and inject faults."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

WORKER_LINE = re.compile(r"(Process-\w+) ready for work at (\d+)")


class ClusterProcess:
    """A ``python -m qframe cluster`` child process with its log lines collected.

    Every instance has a fixed lifetime (``lifetime`` seconds) after which it is killed,
    so a failing test can never leave a cluster running.
    """

    def __init__(self, cwd: Path, env: Mapping[str, str], *args: str, lifetime: float = 300.0) -> None:
        self.cwd = cwd
        self.lines: list[str] = []
        self._changed = threading.Condition()
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qframe", "cluster", *args],
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self._reaper = threading.Timer(lifetime, self.kill_all)
        self._reaper.daemon = True
        self._reaper.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def log(self) -> str:
        """Everything the cluster printed so far."""
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30.0, count: int = 1) -> list[str]:
        """Wait until ``count`` lines match the regex ``pattern``; return the matching lines."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if regex.search(line)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._changed.wait(0.2)):
                    raise AssertionError(
                        f"no {count} line(s) matching {pattern!r}; log:\n" + "\n".join(self.lines)
                    )
                self._changed.wait(min(left, 0.2))

    def wait_running(self, timeout: float = 30.0) -> ClusterProcess:
        """Wait for the ``Q Cluster <name> running.`` line."""
        self.wait_for(r"Q Cluster \S+ running\.", timeout)
        return self

    def worker_pids(self) -> list[int]:
        """Pids of every worker that reported ready (replacements included), oldest first."""
        with self._changed:
            return [int(m.group(2)) for line in self.lines if (m := WORKER_LINE.search(line))]

    def stop(self, timeout: float = 60.0) -> int:
        """Send SIGTERM and wait for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.kill_all()

    def kill_all(self) -> None:
        """SIGKILL the cluster's whole process group (main process and children)."""
        self._reaper.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def __enter__(self) -> ClusterProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.kill_all()
