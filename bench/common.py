"""Shared helpers of the benchmark: processes, a tiny Redis client, statistics, tables.

Nothing here imports a task queue, so ``throughput.py`` runs with qframe alone and the
harness's parent process stays free of every peer's import side effects.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

BENCH_DIR = Path(__file__).resolve().parent
TASKS_DIR = BENCH_DIR / "tasks"
REPO_DIR = BENCH_DIR.parent


# --------------------------------------------------------------------------- processes


def start_group(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    log: IO[bytes] | None = None,
    stdout: int | IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new process group (``start_new_session``).

    Its stderr goes to ``log`` when given, and so does its stdout unless ``stdout`` says
    otherwise, so a chatty worker can never block on a full pipe.
    """
    return subprocess.Popen(
        list(argv),
        env=env,
        cwd=str(cwd) if cwd is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=stdout if stdout is not None else log,
        stderr=log if stdout is not None or log is None else subprocess.STDOUT,
        start_new_session=True,
    )


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Send ``sig`` to process group ``pgid``; False when the group is already gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_groups(procs: Sequence[subprocess.Popen[bytes]], grace: float = 15.0) -> list[int | None]:
    """Stop every process group led by ``procs`` and return the leaders' exit codes.

    Each leader first gets SIGTERM (its own clean shutdown); whatever is still alive in
    its group after ``grace`` seconds, and every straggler left behind by a leader that
    did exit, is killed with SIGKILL. Never raises for processes that are already gone.
    """
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    codes: list[int | None] = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            codes.append(None)
        kill_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    return codes


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} missing)"
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- redis


@dataclass(frozen=True)
class RedisAddress:
    """Where a Redis server listens, without a database number."""

    host: str = "127.0.0.1"
    port: int = 6379
    password: str | None = None
    username: str | None = None

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """Read ``redis://[user:password@]host[:port][/db]``; the db part is ignored."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", ""):
            raise ValueError(f"only redis:// URLs are supported, got {url!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            password=unquote(parts.password) if parts.password else None,
            username=unquote(parts.username) if parts.username else None,
        )

    def url(self, db: int) -> str:
        """The ``redis://`` URL of database ``db`` on this server."""
        auth = ""
        if self.password is not None:
            auth = f"{self.username or ''}:{self.password}@"
        return f"redis://{auth}{self.host}:{self.port}/{db}"


def _resp(*args: str | int) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def redis_command(
    address: RedisAddress, *commands: tuple[str | int, ...], timeout: float = 5.0
) -> list[bytes]:
    """Run ``commands`` on one connection and return each reply's first line.

    A minimal RESP client, enough for PING/SELECT/FLUSHDB/INFO: it keeps the harness's
    parent process free of client libraries. Raises ``RuntimeError`` on an error reply.
    """
    prefix: list[tuple[str | int, ...]] = []
    if address.password is not None:
        prefix.append(
            ("AUTH", address.username, address.password) if address.username else ("AUTH", address.password)
        )
    all_commands = prefix + list(commands)
    with socket.create_connection((address.host, address.port), timeout=timeout) as sock:
        sock.sendall(b"".join(_resp(*cmd) for cmd in all_commands))
        reader = sock.makefile("rb")
        replies: list[bytes] = []
        for _ in all_commands:
            line = reader.readline().rstrip(b"\r\n")
            if line.startswith(b"-"):
                raise RuntimeError(f"redis error: {line[1:].decode(errors='replace')}")
            if line.startswith(b"$") and int(line[1:]) >= 0:
                line = reader.read(int(line[1:]) + 2)[:-2]
            replies.append(line)
    return replies[len(prefix) :]


def flush_db(address: RedisAddress, db: int) -> None:
    """Empty database ``db`` of the server (FLUSHDB)."""
    redis_command(address, ("SELECT", db), ("FLUSHDB",))


@contextlib.contextmanager
def redis_server(binary: str = "redis-server") -> Iterator[RedisAddress]:
    """Run a throw-away ``redis-server`` on a free loopback port for the ``with`` block.

    No persistence (``--save '' --appendonly no``); it is killed (its whole process
    group) when the block exits, whatever the reason.
    """
    path = shutil.which(binary)
    if path is None:
        raise SystemExit(f"{binary} not found: install Redis or pass --redis-url")
    workdir = Path(tempfile.mkdtemp(prefix="qframe-bench-redis-"))
    port = free_port()
    argv = [
        path,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
    ]
    with open(workdir / "redis.log", "wb") as log:
        proc = start_group(argv, log=log)
    address = RedisAddress(port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis_command(address, ("PING",), timeout=1) == [b"+PONG"]:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"redis-server did not start:\n{tail(workdir / 'redis.log')}")
            time.sleep(0.05)
        yield address
    finally:
        stop_groups([proc], grace=5)
        shutil.rmtree(workdir, ignore_errors=True)


def redis_version(address: RedisAddress) -> str:
    """The server's ``redis_version`` from INFO, or ``?``."""
    with contextlib.suppress(OSError, RuntimeError):
        info = redis_command(address, ("INFO", "server"))[0].decode(errors="replace")
        for line in info.splitlines():
            if line.startswith("redis_version:"):
                return line.split(":", 1)[1].strip()
    return "?"


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    """The median of the finite ``values``; NaN when there are none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def ratio(ours: float, theirs: float) -> float:
    """``ours / theirs``, NaN when either is missing or ``theirs`` is zero."""
    if not (math.isfinite(ours) and math.isfinite(theirs)) or theirs == 0:
        return math.nan
    return ours / theirs


def fmt_num(value: float, digits: int = 0) -> str:
    """A number with thousands separators, or ``-`` for NaN."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.{digits}f}"


def fmt_ratio(value: float) -> str:
    """A ratio as ``1.23x``, or ``-`` for NaN."""
    if not math.isfinite(value):
        return "-"
    return f"{value:.2f}x"


# --------------------------------------------------------------------------- tables


@dataclass
class Table:
    """A titled table printed with ``rich`` when it is importable, else as plain text."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        """Append one row; cells are converted with ``str``."""
        self.rows.append([str(c) for c in cells])

    def print(self, force_plain: bool = False) -> None:
        """Print the table (and its notes) to stdout."""
        if not force_plain:
            try:
                from rich.console import Console
                from rich.table import Table as RichTable
            except ImportError:
                pass
            else:
                table = RichTable()
                for i, name in enumerate(self.columns):
                    table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
                for row in self.rows:
                    table.add_row(*row)
                console = Console(width=max(120, shutil.get_terminal_size().columns))
                console.print(self.title, style="bold", highlight=False, markup=False)
                console.print(table)
                for note in self.notes:
                    console.print(note, highlight=False, markup=False)
                return
        print(self.plain())

    def plain(self) -> str:
        """The table as aligned plain text."""
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]

        def line(cells: Sequence[str]) -> str:
            out = [cells[0].ljust(widths[0])]
            out += [cell.rjust(w) for cell, w in zip(cells[1:], widths[1:], strict=False)]
            return "  ".join(out).rstrip()

        rule = "  ".join("-" * w for w in widths)
        body = [self.title, line(self.columns), rule, *(line(r) for r in self.rows)]
        return "\n".join(body + self.notes)

    def markdown(self) -> str:
        """The table as Markdown: the title in bold, a pipe table, the notes as a list."""
        head = "| " + " | ".join(self.columns) + " |"
        rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|"
        body = ["| " + " | ".join(row) + " |" for row in self.rows]
        notes = [f"- {note.strip()}" for note in self.notes]
        return "\n".join([f"**{self.title}**", "", head, rule, *body, "", *notes]) + "\n"
