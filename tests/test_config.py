"""Configuration: layers, per-cluster overrides, validation messages, pickling."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from qframe.config import FIELDS, env_name, load
from qframe.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_without_any_file_or_environment(tmp_path: Path) -> None:
    config = load(environ={}, cwd=tmp_path)
    assert config.name == "default"
    assert config.broker == "sqlite"
    assert config.workers >= 1
    assert config.timeout is None
    assert config.prefetch == 100


def test_layers_file_then_environment_then_flags(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.qframe]\nworkers = 3\ntimeout = 10\nlease = 20\nbulk = 7\n")
    config = load({"workers": 5}, environ={"QFRAME_TIMEOUT": "12", "QFRAME_WORKERS": "4"}, cwd=tmp_path)
    assert (config.workers, config.timeout, config.lease, config.bulk) == (5, 12.0, 20.0, 7)


def test_qframe_toml_wins_over_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.qframe]\nworkers = 3\n")
    write(tmp_path / "qframe.toml", "workers = 6\n")
    assert load(environ={}, cwd=tmp_path).workers == 6


def test_per_cluster_overrides_apply_to_that_cluster_only(tmp_path: Path) -> None:
    write(
        tmp_path / "qframe.toml",
        "timeout = 10\nlease = 30\n[clusters.long]\ntimeout = 600\nlease = 700\n",
    )
    assert load(environ={}, cwd=tmp_path).timeout == 10
    long = load(environ={"QFRAME_CLUSTER_NAME": "long"}, cwd=tmp_path)
    assert (long.name, long.timeout, long.lease) == ("long", 600, 700)
    assert load(environ={}, cwd=tmp_path).for_cluster("long").timeout == 600
    assert load({"name": "long", "timeout": 50}, environ={}, cwd=tmp_path).timeout == 50


def test_unknown_option_names_the_closest_valid_one(tmp_path: Path) -> None:
    write(tmp_path / "qframe.toml", "wokers = 3\n")
    with pytest.raises(
        ConfigError, match=r"^unknown option 'wokers' in qframe.toml \(did you mean 'workers'\?\)$"
    ):
        load(environ={}, cwd=tmp_path)


def test_wrong_types_are_one_line_each(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load(environ={"QFRAME_WORKERS": "many", "QFRAME_COMPRESS": "maybe"}, cwd=tmp_path)
    lines = str(error.value).splitlines()
    assert "option 'workers' must be an integer, got 'many' (from QFRAME_WORKERS)" in lines
    assert "option 'compress' must be true or false, got 'maybe' (from QFRAME_COMPRESS)" in lines
    assert len(lines) == 2


def test_lease_not_longer_than_timeout_explains_duplicates(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"lease \(60 s\) must be longer than timeout \(60 s\).*runs twice"):
        load({"timeout": 60}, environ={}, cwd=tmp_path)


def test_malformed_toml_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "qframe.toml", "workers = \n")
    with pytest.raises(ConfigError, match=r"qframe.toml is not valid TOML"):
        load(environ={}, cwd=tmp_path)


def test_every_option_has_an_environment_variable(tmp_path: Path) -> None:
    environ = {
        env_name("broker_options"): '{"socket_timeout": 3}',
        env_name("plugins"): "a, b",
        env_name("secret_key_fallbacks"): "old1,old2",
        env_name("max_rss"): "none",
        env_name("compress"): "yes",
    }
    config = load(environ=environ, cwd=tmp_path)
    assert config.broker_options == {"socket_timeout": 3}
    assert config.plugins == ("a", "b")
    assert config.secret_key_fallbacks == ("old1", "old2")
    assert config.max_rss is None and config.compress is True
    assert load(environ={"QFRAME_PLUGINS": ""}, cwd=tmp_path).plugins == ()


def test_config_is_frozen_and_picklable(tmp_path: Path) -> None:
    config = load({"broker_options": {"a": 1}}, environ={}, cwd=tmp_path)
    assert pickle.loads(pickle.dumps(config)) == config
    with pytest.raises(AttributeError):
        config.workers = 9  # type: ignore[misc]
    assert config.replace(workers=9).workers == 9


def test_explicit_config_file(tmp_path: Path) -> None:
    path = write(tmp_path / "elsewhere.toml", 'name = "reports"\n')
    assert load(config_file=path, environ={}, cwd=tmp_path).name == "reports"
    with pytest.raises(ConfigError, match="does not exist"):
        load(config_file=tmp_path / "missing.toml", environ={}, cwd=tmp_path)


def test_file_values_name_their_file_and_bad_log_level_is_caught(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.qframe]\nworkers = "two"\n')
    with pytest.raises(
        ConfigError, match=r"^option 'workers' must be an integer, got 'two' \(from pyproject.toml"
    ):
        load(environ={}, cwd=tmp_path)
    (tmp_path / "pyproject.toml").unlink()
    with pytest.raises(ConfigError, match=r"option 'log_level' must be DEBUG, INFO"):
        load({"log_level": "LOUD"}, environ={}, cwd=tmp_path)


def test_every_option_is_documented_with_its_environment_variable() -> None:
    text = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    for name in FIELDS:
        assert f"`{name}`" in text, name
        assert f"`{env_name(name)}`" in text, env_name(name)
