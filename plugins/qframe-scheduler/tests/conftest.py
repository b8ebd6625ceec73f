"""Fixtures of the scheduler's tests: a queue on a SQLite file and a scheduler ticking it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qframe.client import Client
from qframe.config import Config


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A queue and store on one SQLite file; no hook plugins."""
    return Config(broker_url=f"sqlite:///{tmp_path}/q.db", plugins=())


@pytest.fixture
def client(config: Config) -> Iterator[Client]:
    """A producer of that queue."""
    producer = Client(config)
    yield producer
    producer.close()


sys.path.insert(0, str(Path(__file__).parent))  # sched_tasks and multicluster, as the clusters see them
