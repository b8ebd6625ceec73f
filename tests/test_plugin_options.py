"""Options that plugins declare: layers, types, clashes, pickling, and every cluster process."""

from __future__ import annotations

import pickle
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import Lab

from qframe import PluginOption, hookimpl
from qframe.config import load
from qframe.errors import ConfigError
from qframe.testing import wait_until

SELECT = 'plugins = []\nplugin_modules = ["qframe_option_plugin"]\n'


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def fake_plugin(monkeypatch: pytest.MonkeyPatch, name: str, *options: Any) -> str:
    """An importable module whose ``qframe_add_options`` returns ``options``."""
    module = types.ModuleType(name)
    module.qframe_add_options = hookimpl(lambda: list(options))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)
    return name


def error_lines(tmp_path: Path, overrides: Mapping[str, Any] | None = None, **environ: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load(overrides, environ=environ, cwd=tmp_path)
    return str(error.value).splitlines()


def test_a_plugin_option_has_its_default_and_is_read_from_a_file(tmp_path: Path) -> None:
    write(tmp_path / "qframe.toml", SELECT + 'testopt_greeting = "from-file"\n')
    settings = load(environ={}, cwd=tmp_path).plugin("testopt")
    assert (settings.greeting, settings.level) == ("from-file", 1)
    (tmp_path / "qframe.toml").unlink()
    write(tmp_path / "pyproject.toml", "[tool.qframe]\n" + SELECT + "testopt_level = 3\n")
    assert load(environ={}, cwd=tmp_path).plugin("testopt").level == 3


def test_environment_beats_the_file_and_arguments_beat_the_environment(tmp_path: Path) -> None:
    write(tmp_path / "qframe.toml", SELECT + "testopt_level = 2\n[clusters.long]\ntestopt_level = 4\n")
    environ = {"QFRAME_TESTOPT_LEVEL": "5"}
    assert load(environ={}, cwd=tmp_path).plugin("testopt").level == 2
    assert load(environ={"QFRAME_CLUSTER_NAME": "long"}, cwd=tmp_path).plugin("testopt").level == 4
    assert load(environ={}, cwd=tmp_path).for_cluster("long").plugin("testopt").level == 4
    assert load(environ=environ, cwd=tmp_path).plugin("testopt").level == 5
    assert load({"testopt_level": 7}, environ=environ, cwd=tmp_path).plugin("testopt").level == 7


def test_a_wrong_type_is_one_line_naming_its_source(tmp_path: Path) -> None:
    write(tmp_path / "qframe.toml", SELECT)
    assert error_lines(tmp_path, QFRAME_TESTOPT_LEVEL="many") == [
        "option 'testopt_level' must be an integer, got 'many' (from QFRAME_TESTOPT_LEVEL)"
    ]
    write(tmp_path / "qframe.toml", SELECT + "testopt_level = 'lots'\ntestopt_greeting = 3\nworkers = 'x'\n")
    assert error_lines(tmp_path) == [
        "option 'testopt_level' must be an integer, got 'lots' (from qframe.toml)",
        "option 'testopt_greeting' must be a string, got 3 (from qframe.toml)",
        "option 'workers' must be an integer, got 'x' (from qframe.toml)",
    ]


def test_plugin_values_travel_in_the_pickled_config_and_replace_checks_them(tmp_path: Path) -> None:
    config = load({**_select(), "testopt_greeting": "pickled"}, environ={}, cwd=tmp_path)
    copy = pickle.loads(pickle.dumps(config))
    assert copy == config and copy.plugin("testopt").greeting == "pickled"
    assert vars(config.replace(testopt_level="9").plugin("testopt")) == {"greeting": "pickled", "level": 9}
    assert config.for_cluster("other").plugin("testopt").greeting == "pickled"
    wrong = r"^option 'testopt_level' must be an integer, got 'x' \(from arguments\)$"
    with pytest.raises(ConfigError, match=wrong):
        config.replace(testopt_level="x")


def test_an_option_of_a_plugin_not_loaded_is_unknown_and_names_the_plugin(
    tmp_path: Path, tiny_dist: Path
) -> None:
    write(tmp_path / "qframe.toml", 'tinyplug_colour = "red"\n')
    assert load(environ={"QFRAME_PLUGINS": "tinyplug"}, cwd=tmp_path).plugin("tinyplug").colour == "red"
    assert error_lines(tmp_path, QFRAME_PLUGINS="") == [
        "unknown option 'tinyplug_colour' in qframe.toml "
        "(plugin 'tinyplug' is installed but not loaded; see 'plugins' and 'disable_plugins')"
    ]


def test_a_misspelt_plugin_option_names_the_closest_one(tmp_path: Path) -> None:
    write(tmp_path / "qframe.toml", SELECT + "testopt_greting = 'hi'\n")
    assert error_lines(tmp_path) == [
        "unknown option 'testopt_greting' in qframe.toml (did you mean 'testopt_greeting'?)"
    ]


def test_a_name_clashing_with_a_core_option_or_another_plugins_names_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = fake_plugin(monkeypatch, "clash_core", PluginOption("broker", "url", str, "", "Clashes."))
    twin = fake_plugin(monkeypatch, "clash_twin", PluginOption("testopt", "level", int, 0, "Clashes."))
    modules = ("qframe_option_plugin", core, twin)
    assert error_lines(tmp_path, {"plugins": (), "plugin_modules": modules}) == [
        "plugin 'clash_core' declares option 'broker_url', which is a core option",
        "option 'testopt_level' is declared by both plugin 'qframe_option_plugin' and plugin 'clash_twin'",
    ]


def test_malformed_declarations_are_one_line_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = fake_plugin(
        monkeypatch,
        "bad_options",
        PluginOption("bad", "numbers", list[int], [], "Unsupported type."),
        PluginOption("bad", "count", int, "some", "Default of the wrong type."),
        PluginOption("Bad-Name", "x", str, "", "Not an identifier."),
        "not a declaration",
    )
    assert error_lines(tmp_path, {"plugins": (), "plugin_modules": (bad,)}) == [
        "plugin option 'bad_numbers' of 'bad_options' has type list[int]; "
        "use int, float, bool, str, tuple[str, ...], Mapping[str, Any], or one of them | None",
        "plugin option 'bad_count' of 'bad_options' has a default that must be an integer, got 'some'",
        "plugin 'bad_options' declares an option with namespace 'Bad-Name' and name 'x'; "
        "both must be lower-case identifiers (the name may be empty)",
        "plugin 'bad_options' declared 'not a declaration' as an option; expected a qframe.PluginOption",
    ]


def test_every_option_type_converts_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    typed = fake_plugin(
        monkeypatch,
        "typed_options",
        PluginOption("typed", "ratio", float, 0.5, "A float."),
        PluginOption("typed", "flag", bool, False, "A bool."),
        PluginOption("typed", "names", tuple[str, ...], ["a"], "A list of strings."),
        PluginOption("typed", "table", Mapping[str, Any], {}, "A table."),
        PluginOption("typed", "port", int | None, None, "An optional int."),
    )
    select = {"plugins": (), "plugin_modules": (typed,)}
    defaults = load(select, environ={}, cwd=tmp_path).plugin("typed")
    assert vars(defaults) == {"ratio": 0.5, "flag": False, "names": ("a",), "table": {}, "port": None}
    environ = {
        "QFRAME_TYPED_RATIO": "2",
        "QFRAME_TYPED_FLAG": "yes",
        "QFRAME_TYPED_NAMES": "x, y",
        "QFRAME_TYPED_TABLE": '{"k": 1}',
        "QFRAME_TYPED_PORT": "9100",
    }
    settings = load(select, environ=environ, cwd=tmp_path).plugin("typed")
    assert vars(settings) == {
        "ratio": 2.0,
        "flag": True,
        "names": ("x", "y"),
        "table": {"k": 1},
        "port": 9100,
    }


def test_an_option_with_an_empty_name_is_keyed_by_its_namespace_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = fake_plugin(monkeypatch, "main_option", PluginOption("lanes", "", int, 8, "Lanes per process."))
    select = {"plugins": (), "plugin_modules": (main,)}
    assert load(select, environ={}, cwd=tmp_path).plugin("lanes").value == 8
    config = load(select, environ={"QFRAME_LANES": "3"}, cwd=tmp_path)
    assert (config.plugin_values["lanes"], config.plugin("lanes").value) == (3, 3)
    assert config.replace(lanes=5).plugin_values["lanes"] == 5


def test_config_plugin_refuses_a_namespace_nobody_declared(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^no loaded plugin declares options under 'nope'$"):
        load({"plugins": ()}, environ={}, cwd=tmp_path).plugin("nope")


def test_driver_options_still_go_through_broker_and_store_options(tmp_path: Path) -> None:
    config = load(
        {**_select(), "broker_options": {"poll": 0.01}},
        environ={"QFRAME_STORE_OPTIONS": '{"timeout": 3}'},
        cwd=tmp_path,
    )
    assert (config.broker_options, config.store_options) == ({"poll": 0.01}, {"timeout": 3})


def test_the_value_reaches_every_cluster_process(lab: Lab) -> None:
    lab.configure(plugin_modules="qframe_option_plugin", testopt_greeting="from-env", testopt_level=7)
    cluster = lab.cluster()
    seen = wait_until(lambda: len(lab.runs("option-seen")) >= 5 and lab.runs("option-seen"))
    assert sorted(row[1] for row in seen) == ["monitor", "pusher", "sentinel", "worker", "worker"]
    assert {(row[2], row[3]) for row in seen} == {("from-env", "7")}
    assert len({row[4] for row in seen}) == 5  # five processes, each reading its own config
    assert cluster.stop() == 0


def _select() -> dict[str, Any]:
    return {"plugins": (), "plugin_modules": ("qframe_option_plugin",)}
