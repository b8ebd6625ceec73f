"""``concurrency`` and the event loop: declared option, refused below 1, uvloop when installed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import threading
import time
from typing import Any

import pytest

from qframe.config import load
from qframe.errors import ConfigError
from qframe_asyncio import AsyncioManager
from qframe_asyncio.loop import LoopThread, new_event_loop


def test_concurrency_comes_from_the_environment() -> None:
    config = load(environ={"QFRAME_PLUGINS": "asyncio", "QFRAME_CONCURRENCY": "7"})
    assert config.plugin("concurrency").value == 7
    assert AsyncioManager(config).concurrency == 7


def test_concurrency_defaults_to_100_even_without_the_hook_plugin() -> None:
    assert AsyncioManager(load(environ={"QFRAME_PLUGINS": ""})).concurrency == 100


def test_concurrency_below_1_is_one_clear_error() -> None:
    config = load(environ={"QFRAME_PLUGINS": "asyncio", "QFRAME_CONCURRENCY": "0"})
    with pytest.raises(ConfigError, match=r"^option 'concurrency' must be at least 1, got 0$"):
        AsyncioManager(config)


def test_the_loop_is_uvloop_when_installed() -> None:
    uvloop = pytest.importorskip("uvloop")  # in the [test] extra, so CI always has it
    loop = new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_the_loop_is_asyncio_s_own_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def no_uvloop(name: str, *args: Any) -> Any:
        if name == "uvloop":
            raise ImportError("no uvloop here")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_uvloop)
    loop = new_event_loop()
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()


@pytest.mark.parametrize("started", [False, True], ids=["before-start", "while-awaiting"])
def test_a_cancelled_call_ends_with_cancelled_error(started: bool) -> None:
    thread = LoopThread()
    running = threading.Event()
    cancelled = threading.Event()

    async def forever() -> None:
        running.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    if started:
        call = thread.submit(forever())
        assert running.wait(5)
    else:
        thread.loop.call_soon_threadsafe(time.sleep, 0.2)  # keep the loop busy past the cancel
        call = thread.submit(forever())
    call.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        call.result()
    assert cancelled.is_set() is started
