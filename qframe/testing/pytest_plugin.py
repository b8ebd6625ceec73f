"""pytest plugin (entry point ``pytest11``): fixtures for qframe driver tests."""

from __future__ import annotations

import pytest

from qframe.testing.servers import free_port


@pytest.fixture
def loopback_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()
