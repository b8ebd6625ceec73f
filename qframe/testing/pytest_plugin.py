"""pytest plugin (entry point ``pytest11``): fixtures for qframe driver tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from qframe.testing.servers import free_port


@pytest.fixture
def loopback_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    """Objects with ``close()`` appended here are closed after the test (errors in close ignored)."""
    items: list[Any] = []
    yield items
    for item in items:
        with contextlib.suppress(Exception):
            item.close()
