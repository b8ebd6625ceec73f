"""An SQS endpoint the tests start themselves: moto's HTTP server on a free loopback port.

:class:`MotoServer` runs ``python -m moto.server`` with a fixed lifetime (it is killed
after ``LIFETIME`` s whatever happens, and with the test process). ``QFRAME_SQS_ENDPOINT``
points the whole suite at another SQS endpoint instead. Under ``CI=true`` a missing moto
fails the tests instead of skipping them.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from qframe.testing import free_port
from qframe.testing.servers import die_with_parent

START_TIMEOUT = 20.0
#: The longest a moto server lives: the whole plugin suite takes a few minutes.
LIFETIME = 900.0


def require_moto() -> None:
    """Skip without moto's server (``pip install 'qframe-sqs[test]'``); fail under ``CI=true``."""
    if importlib.util.find_spec("moto.server") is None or importlib.util.find_spec("flask") is None:
        message = "moto[server] is not installed (pip install 'qframe-sqs[test]')"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


class MotoServer:
    """One moto HTTP server on 127.0.0.1; :meth:`restart` starts an empty one on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._reaper: threading.Timer | None = None
        atexit.register(self.stop)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        """Start the server and wait until it answers."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        self._reaper = threading.Timer(LIFETIME, self.stop)
        self._reaper.daemon = True
        self._reaper.start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not listen on port {self.port} within {START_TIMEOUT} s")

    def stop(self) -> None:
        """Kill the server (its queues are gone)."""
        if self._reaper is not None:
            self._reaper.cancel()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> MotoServer:
        """Kill it and start an empty server on the same port."""
        self.stop()
        return self.start()


@pytest.fixture(scope="session", autouse=True)
def aws_test_credentials() -> Iterator[None]:
    """Dummy credentials and region for a local endpoint, unless a real endpoint is configured."""
    if os.environ.get("QFRAME_SQS_ENDPOINT"):
        yield
        return
    saved = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """The endpoint every test shares: ``QFRAME_SQS_ENDPOINT``, or a moto server of this session."""
    configured = os.environ.get("QFRAME_SQS_ENDPOINT")
    if configured:
        yield configured
        return
    require_moto()
    server = MotoServer().start()
    yield server.endpoint
    server.stop()


@pytest.fixture
def own_moto() -> Iterator[MotoServer]:
    """A moto server for this test alone (for restarts)."""
    if os.environ.get("QFRAME_SQS_ENDPOINT"):
        pytest.skip("restarts need a moto server of the suite's own, not QFRAME_SQS_ENDPOINT")
    require_moto()
    server = MotoServer().start()
    yield server
    server.stop()
