"""An SQS endpoint the tests start themselves: moto's HTTP server on a free loopback port.

:class:`MotoServer` runs ``python -m moto.server`` with a fixed lifetime (it is killed
after ``LIFETIME`` s whatever happens, and with the test process). ``QFRAME_SQS_ENDPOINT``
points the whole suite at another SQS endpoint instead. Under ``CI=true`` a missing moto
fails the tests instead of skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qframe.testing import ServerProcess

#: The longest a moto server lives: the whole plugin suite takes a few minutes.
LIFETIME = 900.0


def require_moto() -> None:
    """Skip without moto's server (``pip install 'qframe-sqs[test]'``); fail under ``CI=true``."""
    if importlib.util.find_spec("moto.server") is None or importlib.util.find_spec("flask") is None:
        message = "moto[server] is not installed (pip install 'qframe-sqs[test]')"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


class MotoServer(ServerProcess):
    """``python -m moto.server`` on 127.0.0.1; it keeps nothing, so a restart starts it empty."""

    label = "moto server"
    durable = False

    def __init__(self, directory: Path) -> None:
        super().__init__(sys.executable, directory, lifetime=LIFETIME)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line that starts moto's server on :attr:`port`."""
        return [self.binary, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]


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
def sqs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint every test shares: ``QFRAME_SQS_ENDPOINT``, or a moto server of this session."""
    configured = os.environ.get("QFRAME_SQS_ENDPOINT")
    if configured:
        yield configured
        return
    require_moto()
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    yield server.endpoint
    server.stop()


@pytest.fixture
def own_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto server for this test alone (for restarts)."""
    if os.environ.get("QFRAME_SQS_ENDPOINT"):
        pytest.skip("restarts need a moto server of the suite's own, not QFRAME_SQS_ENDPOINT")
    require_moto()
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()
