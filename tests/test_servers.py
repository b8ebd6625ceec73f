"""ServerProcess: start, crash, restart, pause and lifetime, on a real server (``python -m http.server``)."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from qframe.testing import ServerProcess, wait_until

pytestmark = pytest.mark.timeout(60)


class FileServer(ServerProcess):
    """Python's own HTTP server, serving its data directory."""

    label = "http.server"

    def command(self) -> list[str]:
        address = ["--bind", "127.0.0.1", "-d", str(self.directory)]
        return [self.binary, "-m", "http.server", str(self.port), *address]

    def answers(self) -> bool:
        return self.get("/", timeout=1) is not None

    def get(self, path: str, timeout: float = 1.0) -> bytes | None:
        """The body at ``path``, or None when the server does not answer in time."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as reply:
                return bytes(reply.read())
        except (OSError, urllib.error.URLError):
            return None


@pytest.fixture
def server(tmp_path: Path) -> FileServer:
    return FileServer(sys.executable, tmp_path / "data")


def test_restart_after_a_hard_kill_serves_the_same_data_on_the_same_port(server: FileServer) -> None:
    with server:
        (server.directory / "kept.txt").write_text("still here")
        assert server.process is not None
        port, pid = server.port, server.process.pid
        server.kill_hard()
        assert not psutil.pid_exists(pid)
        assert server.get("/kept.txt") is None and not server.running
        server.restart()
        assert server.port == port and server.get("/kept.txt") == b"still here"
    assert not server.running


def test_a_paused_server_accepts_connections_but_answers_only_after_resume(server: FileServer) -> None:
    with server:
        server.pause()
        assert server.get("/", timeout=0.5) is None
        assert server.running
        server.resume()
        assert server.get("/") is not None


def test_stop_ends_a_paused_server(server: FileServer) -> None:
    server.start().pause()
    server.stop()
    assert not server.running and server.get("/", timeout=0.5) is None


def test_a_server_is_killed_at_the_end_of_its_lifetime(tmp_path: Path) -> None:
    server = FileServer(sys.executable, tmp_path / "short", lifetime=1.5)
    server.start()
    process = server.process
    assert process is not None
    wait_until(lambda: process.poll() is not None, timeout=20)
    with pytest.raises(RuntimeError, match=r"past its lifetime of 1\.5 s"):
        server.start()


def test_a_server_that_exits_at_start_is_one_clear_error(tmp_path: Path) -> None:
    broken = FileServer(sys.executable, tmp_path / "broken", args=())
    broken.command = lambda: [sys.executable, "-c", "raise SystemExit(3)"]  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match=r"http\.server on port \d+ exited at start"):
        broken.start()
