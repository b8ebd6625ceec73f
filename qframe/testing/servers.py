"""Helpers for tests that start their own servers on loopback ports."""

from __future__ import annotations

import os
import shutil
import socket

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_binary(name: str) -> str:
    """The path of server binary ``name``; skip the test locally, fail it under ``CI=true``."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (the README lists the system packages tests need)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path
