"""A PostgreSQL server for the tests, from the installed binaries, on a free loopback port.

``initdb`` makes a throw-away cluster in a temporary directory; ``postgres`` runs in the
foreground as a child of the test process (as the ``postgres`` user when the tests run as
root), dies with it, and is stopped at the end of its lifetime at the latest.
:meth:`PostgresServer.crash` is ``pg_ctl stop -m immediate`` (no shutdown checkpoint,
clients cut off), :meth:`PostgresServer.start` brings it back on the same port and data.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from qframe.testing import free_port
from qframe.testing.servers import die_with_parent

#: Seconds a session's server may live.
LIFETIME = 900.0


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb, postgres and pg_ctl (None if none)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def require_postgres() -> Path:
    """The binaries' directory; skip locally, fail under ``CI=true`` when PostgreSQL is missing."""
    binaries = postgres_bin()
    if binaries is None:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return binaries


class PostgresServer:
    """One throw-away PostgreSQL cluster."""

    def __init__(self, binaries: Path, lifetime: float = LIFETIME) -> None:
        self.binaries = binaries
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.directory = Path(tempfile.mkdtemp(prefix="qframe-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._reaper = threading.Timer(lifetime, self.stop)
        self._reaper.daemon = True
        self._reaper.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [str(self.binaries / tool), *args], check=True, user=self.user,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip

    def start(self) -> PostgresServer:
        """Start the server and wait until it accepts queries."""
        command = [
            str(self.binaries / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.directory}",
            "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, user=self.user, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=die_with_parent,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start:\n{self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not answer within 30 s")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        """Whether the server answers a query now."""
        import psycopg

        try:
            with psycopg.connect(
                host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=2
            ) as connection:
                connection.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: the server quits at once, as in a crash."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        if self.process is not None:
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its files."""
        self._reaper.cancel()
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)
