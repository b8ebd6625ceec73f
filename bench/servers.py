"""Throw-away servers for the broker modes: moto's SQS, SecantusDB (Mongo wire), PostgreSQL.

Each is a context manager that starts the server from what is installed, on a free loopback
port with a temporary directory, waits until it answers, yields its URL and always kills
it (its whole process group) and removes its files on exit. Only the standard library is
imported here, so the harness's parent process stays free of client libraries.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from common import free_port, kill_group, start_group, tail

#: Seconds a server may take to answer after its start.
START_TIMEOUT = 60.0


class ServerUnavailable(RuntimeError):
    """A broker mode's server is not installed or did not start; the message says which and why."""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _server(
    label: str,
    argv: Sequence[str],
    directory: Path,
    ready: Callable[[], bool],
    user: str | None = None,
) -> Iterator[None]:
    """Run ``argv`` in its own process group, logging to ``directory``, until the block ends."""
    log_path = directory / "server.log"
    with open(log_path, "wb") as log:
        if user is None:
            proc = start_group(argv, cwd=directory, log=log)
        else:
            proc = subprocess.Popen(
                list(argv), cwd=directory, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, user=user,
            )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if proc.poll() is not None:
                why = f"exited at start with {proc.returncode}"
                raise ServerUnavailable(f"{label} {why}:\n{tail(log_path)}")
            if time.monotonic() > deadline:
                why = f"did not answer within {START_TIMEOUT:g} s"
                raise ServerUnavailable(f"{label} {why}:\n{tail(log_path)}")
            time.sleep(0.05)
        yield
    finally:
        kill_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """``python -m moto.server`` (moto[server] in this interpreter); yields ``http://127.0.0.1:<port>``."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise ServerUnavailable("moto[server] is not installed: pip install 'moto[server]'") from None
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="qframe-bench-moto-"))
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _server("moto server", argv, directory, lambda: _accepts(port)):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def secantus_server() -> Iterator[str]:
    """SecantusDB's ``secantusd-py``, every commit fsynced; yields ``mongodb://127.0.0.1:<port>``."""
    beside = Path(sys.executable).with_name("secantusd-py")
    binary = str(beside) if beside.is_file() else shutil.which("secantusd-py")
    if binary is None:
        raise ServerUnavailable("secantusd-py is not installed: pip install secantusdb")
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="qframe-bench-secantus-"))
    argv = [
        binary, "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(directory / "data"),
        "--log-level", "WARNING", "--sync-on-commit",
    ]  # fmt: skip
    with _server("SecantusDB", argv, directory, lambda: _accepts(port)):
        yield f"mongodb://127.0.0.1:{port}"


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding ``initdb`` (else ``initdb`` on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """``initdb`` + ``postgres`` (as the ``postgres`` user when root); yields ``postgresql://...``.

    Durability settings are PostgreSQL's defaults (``fsync`` on): both systems measured on it
    commit alike.
    """
    binaries = postgres_bin()
    if binaries is None:
        raise ServerUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    user = "postgres" if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="qframe-bench-pg-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    data = directory / "data"
    made = subprocess.run(
        [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        user=user, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
    )  # fmt: skip
    if made.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise ServerUnavailable(f"initdb failed ({made.returncode}): {made.stderr.decode(errors='replace')}")
    port = free_port()
    argv = [
        str(binaries / "postgres"), "-D", str(data), "-p", str(port),
        "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={directory}",
        "-c", "max_connections=200",
    ]  # fmt: skip
    ready = data / "postmaster.pid"

    def answers() -> bool:
        # postmaster.pid's last line says "ready" once the server accepts connections.
        try:
            return _accepts(port) and "ready" in ready.read_text()
        except OSError:
            return False

    with _server("PostgreSQL", argv, directory, answers, user=user):
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
