"""``threads``: declared as a plugin option, read by the manager, refused below 1."""

from __future__ import annotations

import pytest

from qframe.config import load
from qframe.errors import ConfigError
from qframe_threads import ThreadsManager


def test_threads_comes_from_the_environment() -> None:
    config = load(environ={"QFRAME_PLUGINS": "threads", "QFRAME_THREADS": "3"})
    assert config.plugin("threads").value == 3
    assert ThreadsManager(config).threads == 3


def test_threads_defaults_to_8_even_without_the_hook_plugin() -> None:
    assert ThreadsManager(load(environ={"QFRAME_PLUGINS": ""})).threads == 8


def test_threads_below_1_is_one_clear_error() -> None:
    config = load(environ={"QFRAME_PLUGINS": "threads", "QFRAME_THREADS": "0"})
    with pytest.raises(ConfigError, match=r"^option 'threads' must be at least 1, got 0$"):
        ThreadsManager(config)
