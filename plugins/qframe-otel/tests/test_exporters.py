"""Exporter settings: a bad one is a one-line error; ``otlp`` posts spans to an OTLP/HTTP receiver."""

from __future__ import annotations

import http.server
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qframe.client import Client
from qframe.config import load as load_config
from qframe.errors import PluginError
from qframe.testing.cluster import ClusterProcess
from qframe_otel.settings import Settings


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"otel_exporter": "jaeger"}, "otel_exporter 'jaeger' is not one of '', 'console', 'file', 'otlp'"),
        ({"otel_exporter": "file"}, "otel_exporter = 'file' needs otel_file"),
    ],
)
def test_exporter_settings_that_cannot_work_are_one_line_errors(
    options: dict[str, object], error: str
) -> None:
    with pytest.raises(PluginError, match=error):
        Settings.of(load_config({"plugins": ("otel",), **options}, environ={})).check()


def test_an_unknown_exporter_stops_the_cluster_with_one_line(tmp_path: Path) -> None:
    env = {
        "QFRAME_BROKER_URL": f"sqlite:///{tmp_path}/q.db",
        "QFRAME_PLUGINS": "otel",
        "QFRAME_OTEL_EXPORTER": "x",
    }
    with ClusterProcess(tmp_path, env, lifetime=60) as cluster:
        assert cluster.process.wait(60) != 0
    assert "otel_exporter 'x' is not one of" in cluster.log


class Receiver(http.server.BaseHTTPRequestHandler):
    """Keeps the body of every POST, as an OTLP/HTTP collector would receive it."""

    bodies: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[int]:
    """An HTTP server on a free loopback port collecting OTLP posts."""
    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_otlp_exporter_posts_the_enqueue_span_when_the_producer_exits(tmp_path: Path, receiver: int) -> None:
    producer = textwrap.dedent(
        f"""
        from qframe.client import Client
        from qframe.config import load
        options = {{"broker_url": "sqlite:///{tmp_path}/q.db", "plugins": ("otel",), "otel_exporter": "otlp"}}
        config = load(options)
        print(Client(config).async_task("math.floor", 1.5))
        """
    )
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", producer], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    task_id = done.stdout.strip()
    posts = [body for path, body in Receiver.bodies if path == "/v1/traces"]
    assert any(task_id.encode() in body and b"enqueue math.floor" in body for body in posts)


def test_otlp_spans_of_cluster_processes_are_flushed_when_the_cluster_stops(
    tmp_path: Path, receiver: int
) -> None:
    env = {
        "QFRAME_BROKER_URL": f"sqlite:///{tmp_path}/q.db",
        "QFRAME_PLUGINS": "otel",
        "QFRAME_OTEL_EXPORTER": "otlp",
        "QFRAME_WORKERS": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver}",
        "OTEL_BSP_SCHEDULE_DELAY": "600000",  # nothing leaves before the exit flush
    }
    client = Client(load_config({"plugins": ()}, environ=env, cwd=tmp_path))  # no spans from this producer
    with ClusterProcess(tmp_path, env, lifetime=100) as cluster:
        cluster.wait_running(60)
        task_id = client.async_task("math.floor", 2.5)
        assert client.fetch(task_id, wait=60) is not None
        assert cluster.stop() == 0
    client.close()
    posts = [body for path, body in Receiver.bodies if path == "/v1/traces"]
    assert any(task_id.encode() in body and b"run math.floor" in body for body in posts)
