"""The plugin manager (allow/deny lists, isolation) and the driver registry."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import pytest

from qframe import hookimpl
from qframe.builtin.sqlite import SQLiteBroker, SQLiteStore
from qframe.config import load as load_config
from qframe.drivers import available, load, make_broker, make_store, store_choice
from qframe.errors import ConfigError, DriverNotFound
from qframe.hooks import Hooks
from qframe.plugins import list_plugins, make_plugin_manager


def config(**options: object):  # type: ignore[no-untyped-def]
    return load_config(options, environ={}, cwd=Path("/"))


class Broken:
    @hookimpl
    def qframe_task_succeeded(self, result: object) -> None:
        raise RuntimeError("broken on purpose")


class Counting:
    calls = 0

    @hookimpl
    def qframe_task_succeeded(self, result: object) -> None:
        Counting.calls += 1


def test_a_raising_plugin_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    pm = make_plugin_manager(config(plugins=()))
    pm.register(Counting(), name="counting")
    pm.register(Broken(), name="broken")
    Counting.calls = 0
    with caplog.at_level(logging.ERROR, logger="qframe"):
        Hooks(pm).task_succeeded(None)  # type: ignore[arg-type]
    assert Counting.calls == 1
    assert "plugin broken failed in qframe_task_succeeded; carrying on" in caplog.text


def test_allow_and_deny_lists_govern_an_installed_entry_point_plugin(tiny_dist: Path) -> None:
    def loaded(**environ: str) -> bool:
        pm = make_plugin_manager(load_config(environ=environ, cwd=tiny_dist))
        return "tinyplug" in dict(list_plugins(pm))

    assert loaded()  # no allow-list: every installed plugin
    assert not loaded(QFRAME_PLUGINS="")
    assert loaded(QFRAME_PLUGINS="tinyplug")
    assert not loaded(QFRAME_PLUGINS="someother")
    assert not loaded(QFRAME_DISABLE_PLUGINS="tinyplug")
    assert not loaded(QFRAME_PLUGINS="tinyplug", QFRAME_DISABLE_PLUGINS="tinyplug")


def test_plugin_modules_are_registered_and_deny_list_blocks_them(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("qframe_fake_plugin")
    module.qframe_task_failed = hookimpl(lambda result: None)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qframe_fake_plugin", module)
    pm = make_plugin_manager(config(plugins=(), plugin_modules=("qframe_fake_plugin",)))
    assert list_plugins(pm) == [("qframe_fake_plugin", ["qframe_task_failed"])]
    blocked = make_plugin_manager(
        config(plugins=(), plugin_modules=("qframe_fake_plugin",), disable_plugins=("qframe_fake_plugin",))
    )
    assert list_plugins(blocked) == []


def test_a_plugin_module_that_does_not_import_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"^plugin module 'no_such_plugin_mod' does not import: "):
        make_plugin_manager(config(plugins=(), plugin_modules=("no_such_plugin_mod",)))


def test_builtin_defaults_are_entry_point_drivers() -> None:
    assert "sqlite" in available("broker") and "sqlite" in available("store")
    assert "prefork" in available("process_manager")
    assert load("broker", "sqlite") is SQLiteBroker


def test_unknown_driver_lists_installed_names() -> None:
    with pytest.raises(DriverNotFound) as error:
        load("broker", "rabbit")
    assert str(error.value) == f"unknown broker 'rabbit'; installed brokers: {', '.join(available('broker'))}"
    with pytest.raises(
        DriverNotFound, match=r"^unknown process manager 'x'; installed process managers: .*prefork"
    ):
        load("process_manager", "x")


def test_module_class_paths_load_and_bad_ones_fail_clearly() -> None:
    assert load("store", "qframe.builtin.sqlite:SQLiteStore") is SQLiteStore
    with pytest.raises(DriverNotFound, match=r"^broker 'nowhere:Thing' does not import"):
        load("broker", "nowhere:Thing")


def test_store_defaults_to_the_brokers_own_store_else_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"
    assert store_choice(config(broker_url=url)) == ("sqlite", url)
    assert store_choice(config(store="sqlite", store_url="sqlite:///other.db")) == (
        "sqlite",
        "sqlite:///other.db",
    )
    assert isinstance(make_broker(config(broker_url=url)), SQLiteBroker)
    assert isinstance(make_store(config(broker_url=url)), SQLiteStore)
