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
from qframe.errors import ConfigError, DriverNotFound, PluginError
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


def test_an_entry_point_that_does_not_import_is_left_out_and_the_others_load(
    broken_dists: Path, tiny_dist: Path
) -> None:
    pm = make_plugin_manager(load_config(environ={}, cwd=broken_dists))
    assert "tinyplug" in dict(list_plugins(pm))
    assert "brokenplug" not in dict(list_plugins(pm))
    assert pm.broken["brokenplug"] == (
        "plugin 'brokenplug' (entry point 'brokenplug = qframe_broken_dist' of distribution "
        "qframe-broken 0.1) does not import: ModuleNotFoundError: No module named 'nothere'"
    )


def test_a_misspelt_hook_leaves_its_plugin_out_naming_the_function_and_the_closest_hook(
    broken_dists: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pm = make_plugin_manager(load_config(environ={}, cwd=broken_dists))
    assert "typoplug" not in dict(list_plugins(pm))
    assert pm.broken["typoplug"] == (
        "plugin 'typoplug' (entry point 'typoplug = qframe_typo_dist' of distribution qframe-typo 0.1): "
        "function qframe_typo_dist.qframe_task_sucseeded is not a qframe hook "
        "(did you mean qframe_task_succeeded?)"
    )
    module = types.ModuleType("qframe_typo_module")
    exec("from qframe import hookimpl\n@hookimpl\ndef qframe_task_faild(result): pass", vars(module))
    monkeypatch.setitem(sys.modules, "qframe_typo_module", module)
    pm = make_plugin_manager(config(plugins=(), plugin_modules=("qframe_typo_module",)))
    assert list_plugins(pm) == []
    assert pm.broken["qframe_typo_module"] == (
        "plugin module 'qframe_typo_module': function qframe_typo_module.qframe_task_faild is not a "
        "qframe hook (did you mean qframe_task_failed?)"
    )


def test_a_function_taking_an_argument_its_hook_does_not_provide_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("qframe_bad_args")
    module.qframe_task_failed = hookimpl(lambda res: None)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qframe_bad_args", module)
    pm = make_plugin_manager(config(plugins=(), plugin_modules=("qframe_bad_args",)))
    assert list_plugins(pm) == [] and pm.hook.qframe_task_failed.get_hookimpls() == []
    [line] = pm.broken["qframe_bad_args"].splitlines()
    assert line.startswith("plugin module 'qframe_bad_args': hookimpl definition: <lambda>(res); ")
    assert "{'res'}" in line


def test_strict_plugins_makes_a_broken_plugin_a_one_line_error(broken_dists: Path) -> None:
    with pytest.raises(PluginError) as error:
        load_config(
            environ={"QFRAME_STRICT_PLUGINS": "true", "QFRAME_PLUGINS": "brokenplug"}, cwd=broken_dists
        )
    assert str(error.value) == (
        "plugin 'brokenplug' (entry point 'brokenplug = qframe_broken_dist' of distribution "
        "qframe-broken 0.1) does not import: ModuleNotFoundError: No module named 'nothere' "
        "(strict_plugins is on)"
    )
    with pytest.raises(
        PluginError, match=r"qframe_task_sucseeded is not a qframe hook .*strict_plugins is on"
    ):
        load_config(environ={"QFRAME_STRICT_PLUGINS": "1", "QFRAME_PLUGINS": "typoplug"}, cwd=broken_dists)
