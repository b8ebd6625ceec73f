"""A Mongo-wire-compatible server the tests start themselves: SecantusDB on a free loopback port.

:class:`SecantusServer` runs SecantusDB's ``secantusd-py`` executable as a separate process
(it is GPL-2.0: installed into the test environment only, never imported) with a data
directory of its own, so ``kill_hard()`` followed by ``restart()`` shows what survives a
crash. The session shares one server (every test uses its own collection prefix); a test
that kills its server starts a private one (``own_mongo_server``).

``QFRAME_MONGO_URL=mongodb://...`` runs the same suite against a real MongoDB instead
(the tests that kill the server are then skipped). Under ``CI=true`` a missing SecantusDB
fails the tests instead of skipping them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymongo
import pytest

from qframe.testing import ServerProcess

#: Seconds the server shared by the whole session may live (a private one gets 300).
SESSION_LIFETIME = 1800.0
#: The test label of everything that runs against SecantusDB.
LABEL = "Mongo-wire-compatible (SecantusDB)"
#: SecantusDB keeps documents in this many tables, each collection in one of them.
DOCUMENT_TABLES = 16


def external_url() -> str | None:
    """``QFRAME_MONGO_URL``: a real MongoDB to test against instead of SecantusDB."""
    return os.environ.get("QFRAME_MONGO_URL") or None


def secantus_binary() -> str:
    """Path of ``secantusd-py`` (beside this Python first); skip locally, fail under ``CI=true``."""
    beside = Path(sys.executable).with_name("secantusd-py")
    path = str(beside) if beside.is_file() else shutil.which("secantusd-py")
    if path is None:
        message = (
            "SecantusDB is not installed (pip install secantusdb into the test environment; "
            "nox installs it for the qframe-mongo session)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


class SecantusServer(ServerProcess):
    """SecantusDB serving the MongoDB wire protocol on 127.0.0.1, data kept in its directory."""

    label = "SecantusDB"

    @property
    def url(self) -> str:
        """``mongodb://127.0.0.1:<port>/qframe_test``."""
        return f"mongodb://127.0.0.1:{self.port}/qframe_test"

    def command(self) -> list[str]:
        """The command line: loopback port, data directory, every commit fsynced."""
        return [
            self.binary,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", str(self.directory / "data"),
            "--log-level", "WARNING",
            "--sync-on-commit",
            *self.args,
        ]  # fmt: skip

    def answers(self) -> bool:
        """Whether the server answers ``ping``."""
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            self.url, serverSelectionTimeoutMS=500, connectTimeoutMS=500, directConnection=True
        )
        try:
            return bool(client.admin.command("ping").get("ok"))
        except pymongo.errors.PyMongoError:
            return False
        finally:
            client.close()

    def create_every_document_table(self) -> None:
        """Write once to a collection in each of SecantusDB's document tables.

        SecantusDB (0.7.0b3) creates a document table on the first write to a collection
        that maps to it, and a SIGKILL during that creation leaves a table its next start
        refuses to open ("cannot be used until all column groups are created"). A test that
        kills its server does so while the cluster writes, so the tables are made first.
        The mapping is FNV-1a over ``database NUL collection`` modulo the table count.
        """
        names: dict[int, str] = {}
        for number in itertools.count():
            name = f"warm{number}"
            names.setdefault(fnv1a(b"qframe_warm\x00" + name.encode()) % DOCUMENT_TABLES, name)
            if len(names) == DOCUMENT_TABLES:
                break
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(self.url, directConnection=True)
        try:
            for name in names.values():
                client.qframe_warm[name].insert_one({})
        finally:
            client.close()


def fnv1a(data: bytes) -> int:
    """The 64-bit FNV-1a hash of ``data``."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


@pytest.fixture
def secantus_lookup() -> Callable[[], str]:
    """:func:`secantus_binary`, for the test of what happens when SecantusDB is missing."""
    return secantus_binary


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    """The URL every test shares: ``QFRAME_MONGO_URL``, or a SecantusDB of this session."""
    configured = external_url()
    if configured:
        return configured
    server = SecantusServer(secantus_binary(), tmp_path_factory.mktemp("secantus"), lifetime=SESSION_LIFETIME)
    request.addfinalizer(server.stop)
    server.start()
    return server.url


@pytest.fixture
def own_mongo_server(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[], SecantusServer]:
    """Start a private SecantusDB for one test (for the tests that kill and restart it)."""

    def start() -> SecantusServer:
        if external_url():
            pytest.skip("killing the server needs a SecantusDB of the suite's own, not QFRAME_MONGO_URL")
        server = SecantusServer(
            secantus_binary(), tmp_path / f"secantus-{uuid.uuid4().hex[:6]}", lifetime=300
        )
        request.addfinalizer(server.stop)
        server.start()
        server.create_every_document_table()
        return server

    return start


@pytest.fixture
def prefix() -> str:
    """A collection prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"

