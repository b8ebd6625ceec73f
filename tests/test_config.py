"""Configuration: layers, per-cluster overrides, validation messages, pickling."""

from __future__ import annotations

import logging
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


def test_the_config_file_is_found_upward_passing_over_a_pyproject_without_the_table(tmp_path: Path) -> None:
    write(tmp_path / "qframe.toml", "workers = 3\n")
    deeper = tmp_path / "sub" / "deeper"
    deeper.mkdir(parents=True)
    write(tmp_path / "sub" / "pyproject.toml", "[project]\nname = 'sub'\n")
    assert load(environ={}, cwd=deeper).workers == 3
    write(tmp_path / "sub" / "pyproject.toml", "[tool.qframe]\nworkers = 4\n")
    assert load(environ={}, cwd=deeper).workers == 4
    write(deeper / "qframe.toml", "wokers = 5\n")
    with pytest.raises(ConfigError, match=r"^unknown option 'wokers' in qframe.toml "):
        load(environ={}, cwd=deeper)
    (deeper / "qframe.toml").unlink()
    write(tmp_path / "sub" / "pyproject.toml", "[tool.qframe]\nwokers = 4\n")
    with pytest.raises(ConfigError, match=rf"^unknown option 'wokers' in {tmp_path}/sub/pyproject.toml \["):
        load(environ={}, cwd=deeper)


def test_relative_sqlite_urls_in_the_file_are_files_beside_it(tmp_path: Path) -> None:
    write(
        tmp_path / "qframe.toml",
        'broker_url = "sqlite:///data/q.db"\n[clusters.long]\nstore_url = "sqlite:///long.db"\n',
    )
    (tmp_path / "sub").mkdir()
    config = load(environ={}, cwd=tmp_path / "sub")
    assert config.broker_url == f"sqlite:///{tmp_path}/data/q.db"
    assert config.for_cluster("long").store_url == f"sqlite:///{tmp_path}/long.db"
    from_env = load(environ={"QFRAME_BROKER_URL": "sqlite:///mine.db"}, cwd=tmp_path / "sub")
    assert from_env.broker_url == "sqlite:///mine.db"  # the environment's are the process's own
    write(tmp_path / "qframe.toml", 'broker_url = "sqlite:////srv/q.db"\n')
    assert load(environ={}, cwd=tmp_path / "sub").broker_url == "sqlite:////srv/q.db"


def test_the_sqlite_default_lives_beside_the_config_file(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.qframe]\nworkers = 2\n")
    (tmp_path / "sub").mkdir()
    assert load(environ={}, cwd=tmp_path / "sub").broker_url == f"sqlite:///{tmp_path}/qframe.db"
    redis = load({"broker": "redis", "store": "sqlite"}, environ={}, cwd=tmp_path / "sub")
    assert (redis.broker_url, redis.store_url) == (None, f"sqlite:///{tmp_path}/qframe.db")
    (tmp_path / "pyproject.toml").unlink()
    assert load(environ={}, cwd=tmp_path / "sub").broker_url is None  # no file: the current directory


def test_a_typo_in_any_cluster_table_is_an_error_at_load(tmp_path: Path) -> None:
    write(
        tmp_path / "qframe.toml",
        "[clusters.long]\nwokers = 2\n[clusters.other]\nlease = 'soon'\n",
    )
    expected = [
        "unknown option 'wokers' in qframe.toml [clusters.long] (did you mean 'workers'?)",
        "option 'lease' must be a number, got 'soon' (from qframe.toml [clusters.other])",
    ]
    for environ in ({}, {"QFRAME_CLUSTER_NAME": "long"}):
        with pytest.raises(ConfigError) as error:
            load(environ=environ, cwd=tmp_path)
        assert str(error.value).splitlines() == expected


def test_qframe_clusters_sets_the_starting_clusters_table_and_the_producers(tmp_path: Path) -> None:
    tables = '{"long": {"timeout": 600, "lease": 700}}'
    long = load(environ={"QFRAME_CLUSTERS": tables, "QFRAME_CLUSTER_NAME": "long"}, cwd=tmp_path)
    assert (long.timeout, long.lease) == (600, 700)
    producer = load(environ={"QFRAME_CLUSTERS": tables}, cwd=tmp_path)
    assert (producer.timeout, producer.for_cluster("long").timeout) == (None, 600)
    with pytest.raises(
        ConfigError, match=r"^unknown option 'wokers' in QFRAME_CLUSTERS \[clusters.long\] \(did you mean"
    ):
        load(environ={"QFRAME_CLUSTERS": '{"long": {"wokers": 1}}'}, cwd=tmp_path)


def test_a_misspelt_environment_variable_is_one_warning_naming_the_closest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, tiny_dist: Path
) -> None:
    environ = {
        "QFRAME_WROKERS": "3",
        "QFRAME_TEST_ANYTHING": "tolerated",
        "QFRAME_CLUSTER_NAME": "x",
        "QFRAME_TINYPLUG_COLOUR": "red",
        "QFRAME_NOTHING_LIKE_IT": "1",
    }
    with caplog.at_level(logging.WARNING, logger="qframe"):
        assert load(environ=environ, cwd=tmp_path).plugin("tinyplug").colour == "red"
        load(environ=environ, cwd=tmp_path)
    assert [r.getMessage() for r in caplog.records] == [
        "environment variable QFRAME_WROKERS sets no qframe option and is ignored "
        "(did you mean QFRAME_WORKERS?)",
        "environment variable QFRAME_NOTHING_LIKE_IT sets no qframe option and is ignored",
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="qframe"):
        load(environ={"QFRAME_PLUGINS": "", "QFRAME_TINYPLUG_COLOUR": "red"}, cwd=tmp_path)
    assert [r.getMessage() for r in caplog.records] == [
        "environment variable QFRAME_TINYPLUG_COLOUR sets no qframe option and is ignored "
        "(plugin 'tinyplug' is installed but not loaded)"
    ]
