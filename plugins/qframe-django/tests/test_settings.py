"""settings.QFRAME and Django Q2's Q_CLUSTER become one qframe Config; mistakes are check errors."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from qframe.config import FIELDS
from qframe_django.conf import load_config
from qframe_django.qcluster import translate

#: Where Q_CLUSTER's save_limit_per goes: the core's option once it has one, else the store's.
SAVE_LIMIT_PER = (
    {"save_limit_per": "func"}
    if "save_limit_per" in FIELDS
    else {"store_options": {"save_limit_per": "func"}}
)


def test_every_documented_q_cluster_key_maps_or_warns_by_name() -> None:
    q_cluster = {
        "name": "site", "workers": 3, "timeout": 30, "retry": 60, "recycle": 9, "max_attempts": 4,
        "queue_limit": 20, "bulk": 5, "poll": 0.3, "compress": True, "save_limit": 250,
        "guard_cycle": 0.7, "cpu_affinity": 1, "log_level": "DEBUG", "orm": "default", "max_rss": 2048,
        "save_limit_per": "func", "scheduler": False, "sync": True, "catch_up": False, "label": "Tasks",
        "ack_failures": True, "daemonize_workers": True, "cache": "default", "cached": 60,
        "django_redis": None, "iron_mq": {}, "broker_class": "x.Y", "error_reporter": {},
        "testing": True, "time_zone": "UTC", "has_replica": True, "made_up_key": 1,
    }  # fmt: skip
    out = translate(q_cluster)
    assert out.options == {
        "name": "site", "workers": 3, "timeout": 30, "lease": 60, "recycle": 9, "max_attempts": 4,
        "prefetch": 20, "bulk": 5, "poll": 0.3, "compress": True, "save_limit": 250, "guard_cycle": 0.7,
        "cpu_affinity": 1, "log_level": "DEBUG", "broker": "orm", "broker_url": "default", "max_rss": 2,
        **SAVE_LIMIT_PER, "scheduler": "",
    }  # fmt: skip
    assert out.app == {"sync": True, "catch_up": False, "label": "Tasks"}
    warned = {w.split("'")[1] for w in out.warnings}
    assert warned == {
        "daemonize_workers", "cache", "cached", "django_redis", "iron_mq", "broker_class",
        "error_reporter", "testing", "time_zone", "has_replica", "made_up_key",
    }  # fmt: skip


def test_redis_given_as_a_dict_becomes_a_url_and_options() -> None:
    out = translate({"redis": {"host": "h", "port": 7000, "db": 2, "password": "p w", "socket_timeout": 3}})
    assert out.options == {
        "broker": "redis",
        "broker_url": "redis://:p%20w@h:7000/2",
        "broker_options": {"socket_timeout": 3},
    }


def test_alt_clusters_are_cluster_tables_with_mapped_keys() -> None:
    out = translate({"ALT_CLUSTERS": {"long": {"timeout": 600, "retry": 700, "name": "ignored"}}})
    assert out.options == {"clusters": {"long": {"timeout": 600, "lease": 700}}}


def test_a_django_q2_settings_module_loads_unchanged() -> None:
    config = load_config()
    assert (config.name, config.broker, config.broker_url) == ("djtest", "orm", "default")
    assert (config.lease, config.timeout, config.workers) == (30, 20, 2)
    assert config.secret_key == "qframe-django-tests-not-secret"
    assert config.secret_key_fallbacks == ("an-older-key",)
    assert "qframe_django.hooks" in config.plugin_modules


@override_settings(QFRAME={"workers": 5, "name": "own"})
def test_qframe_settings_win_over_q_cluster() -> None:
    config = load_config()
    assert (config.name, config.workers, config.lease) == ("own", 5, 30)


@override_settings(Q_CLUSTER={"redis": "redis://127.0.0.1:1/0"})
def test_a_redis_broker_keeps_results_in_the_django_database() -> None:
    config = load_config()
    assert (config.broker, config.store, config.store_url) == ("redis", "orm", "default")


def test_the_environment_wins_over_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QFRAME_WORKERS", "7")
    assert load_config().workers == 7


@override_settings(Q_CLUSTER={"orm": "default", "retry": 10, "timeout": 20, "bogus": 1})
def test_a_misconfiguration_is_a_system_check_error_not_a_crash() -> None:
    messages = checks.run_checks(tags=["qframe"])
    errors = [m for m in messages if m.level >= checks.ERROR]
    warnings = [m for m in messages if m.level == checks.WARNING]
    assert [e.id for e in errors] == ["qframe.E001"]
    assert "lease (10 s) must be longer than timeout (20 s)" in errors[0].msg
    assert [w.id for w in warnings] == ["qframe.W001"] and "'bogus'" in warnings[0].msg


@override_settings(QFRAME={"wrokers": 2})
def test_an_unknown_qframe_option_is_a_check_error_naming_it() -> None:
    errors = [m for m in checks.run_checks(tags=["qframe"]) if m.level >= checks.ERROR]
    assert len(errors) == 1
    assert errors[0].msg == "unknown option 'wrokers' in the settings (did you mean 'workers'?)"


def test_a_clean_project_passes_the_checks() -> None:
    assert checks.run_checks(tags=["qframe"]) == []


def test_the_q_cluster_label_names_the_admin_section() -> None:
    from django.apps import apps

    app = apps.get_app_config("qframe_django")
    try:
        with override_settings(Q_CLUSTER={"orm": "default", "label": "Background jobs"}):
            app.ready()
            assert app.verbose_name == "Background jobs"
    finally:
        app.verbose_name = "qframe"


@override_settings(
    Q_CLUSTER={
        "name": "main",
        "orm": "default",
        "timeout": 20,
        "retry": 30,
        "ALT_CLUSTERS": {"long": {"timeout": 600, "retry": 700}},
    }
)
def test_q_cluster_name_selects_an_alt_cluster_whose_keys_win(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (load_config().name, load_config().timeout) == ("main", 20)
    monkeypatch.setenv("Q_CLUSTER_NAME", "long")
    config = load_config()
    assert (config.name, config.timeout, config.lease) == ("long", 600, 700)
    assert load_config({"name": "main"}).timeout == 20
