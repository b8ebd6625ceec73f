"""Hooks are called through pluggy: wrappers run, plain failures are isolated, PluginError stops."""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from qframe import hookimpl, hookspecs
from qframe.cluster.stat import Stat
from qframe.config import load as load_config
from qframe.errors import PluginError
from qframe.hooks import Hooks
from qframe.plugins import make_plugin_manager
from qframe.task import Task


def hooks(*plugins: object) -> Hooks:
    pm = make_plugin_manager(load_config({"plugins": ()}, environ={}, cwd=Path("/")))
    for index, plugin in enumerate(plugins):
        pm.register(plugin, name=f"plugin-{index}")
    return Hooks(pm)


def stat() -> Stat:
    return Stat("c1", "default", "host", 1)


class Extra:
    @hookimpl
    def qframe_collect_status(self, stat: Stat) -> dict[str, Any]:
        return {"extra": 1}


class WrappingStatus:
    """A new-style wrapper around qframe_collect_status that adds a field to the result."""

    @hookimpl(wrapper=True)
    def qframe_collect_status(self, stat: Stat) -> Generator[None, list[Any], list[Any]]:
        values = yield
        return [*values, {"wrapped": True}]


class BrokenWrapper:
    @hookimpl(wrapper=True)
    def qframe_collect_status(self, stat: Stat) -> Generator[None, list[Any], list[Any]]:
        raise RuntimeError("broken before its yield")
        yield  # pragma: no cover


class Stopping:
    @hookimpl
    def qframe_process_boot(self, role: str) -> None:
        raise PluginError("the metrics port 9100 is taken")


class Tracing:
    """Records around every task call, and sees the task's own error."""

    seen: list[str] = []

    @hookimpl(wrapper=True)
    def qframe_execute_task(self, task: Task) -> Generator[None, Any, Any]:
        Tracing.seen.append(f"enter {task.func}")
        try:
            value = yield
        except ValueError as exc:
            Tracing.seen.append(f"error {exc}")
            raise
        Tracing.seen.append(f"exit {value}")
        return value * 10


def test_collect_status_values_are_returned() -> None:
    assert hooks(Extra()).collect_status(stat()) == [{"extra": 1}]


def test_wrapper_implementations_run_around_the_call() -> None:
    assert hooks(Extra(), WrappingStatus()).collect_status(stat()) == [{"extra": 1}, {"wrapped": True}]


def test_a_broken_wrapper_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="qframe"):
        values = hooks(Extra(), BrokenWrapper()).collect_status(stat())
    assert values == [{"extra": 1}]
    assert "failed in qframe_collect_status" in caplog.text


def test_plugin_error_raised_on_purpose_goes_through() -> None:
    with pytest.raises(PluginError, match="the metrics port 9100 is taken"):
        hooks(Stopping()).process_boot("worker", "w", load_config({}, environ={}, cwd=Path("/")))


def test_execute_task_wrapper_sees_value_and_error() -> None:
    Tracing.seen = []
    calls = hooks(Tracing())
    assert calls.execute_task(Task("math.floor", (2.5,)), lambda x: int(x)) == 20
    with pytest.raises(ValueError, match="bad"):
        calls.execute_task(Task("math.sqrt"), lambda: (_ for _ in ()).throw(ValueError("bad")))
    assert Tracing.seen == ["enter math.floor", "exit 2", "enter math.sqrt", "error bad"]


def test_execute_task_without_plugins_calls_the_function() -> None:
    assert hooks().execute_task(Task("math.floor", (1, 2), {"c": 3}), lambda a, b, c: a + b + c) == 6


def test_pluggy_tracing_sees_hook_calls() -> None:
    calls = hooks(Extra())
    traced: list[str] = []
    calls.pm.add_hookcall_monitoring(lambda name, impls, kwargs: traced.append(name), lambda *a: None)
    calls.collect_status(stat())
    assert traced == ["qframe_collect_status"]


@pytest.mark.parametrize("hook", sorted(n for n in dir(hookspecs) if n.startswith("qframe_")))
def test_every_hook_has_a_typed_facade_method(hook: str) -> None:
    assert callable(getattr(Hooks, hook.removeprefix("qframe_"), None))


class ExecutionRecorder:
    """Records the execute hooks and wraps the task function, doubling its value."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def qframe_pre_execute(self, task: Task, attempt: int) -> None:
        self.calls.append(f"pre {attempt}")

    @hookimpl(wrapper=True)
    def qframe_execute_task(self, task: Task) -> Generator[None, Any, Any]:
        value = yield
        return value * 2

    @hookimpl
    def qframe_post_execute(self, task: Task, result: Any) -> None:
        self.calls.append("post")


def test_execute_hooks_with_only_the_core_behind_them_run_the_function_and_nothing_else() -> None:
    facade = hooks()
    task = Task("operator.add", (2, 3))
    facade.pre_execute(task, 1)
    assert facade.execute_task(task, lambda a, b: a + b) == 5
    facade.post_execute(task, None)  # type: ignore[arg-type]


def test_an_execute_plugin_registered_after_the_facade_was_built_is_called_on_the_next_task() -> None:
    facade = hooks()
    task = Task("operator.add", (2, 3))
    assert facade.execute_task(task, lambda a, b: a + b) == 5
    recorder = ExecutionRecorder()
    facade.pm.register(recorder, name="late")
    facade.pre_execute(task, 1)
    assert facade.execute_task(task, lambda a, b: a + b) == 10
    facade.post_execute(task, None)  # type: ignore[arg-type]
    assert recorder.calls == ["pre 1", "post"]
