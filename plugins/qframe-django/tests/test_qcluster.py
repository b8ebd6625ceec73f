"""Clusters started with ``manage.py qcluster`` on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from clusters import cluster_env, qcluster, stop, wait_for
from django.db.models import Sum
from djtest_app.models import Widget

from qframe.client import Client
from qframe_django import compat
from qframe_django.conf import load_config, reset
from qframe_django.models import Failure, Success, Task

pytestmark = [pytest.mark.timeout(240), pytest.mark.django_db(transaction=True, databases="__all__")]


def make_widgets(alias: str, count: int) -> list[Widget]:
    """``count`` saved widgets in ``alias``."""
    Widget.objects.using(alias).bulk_create([Widget(name=f"w{i}") for i in range(count)])
    return list(Widget.objects.using(alias).order_by("id"))


def client_for(alias: str, **options: object) -> Client:
    """A producer on the same queue and database as the cluster subprocesses."""
    return Client(load_config({"broker_url": alias, "name": "djtest", **options}))


def test_tasks_given_model_instances_leave_exactly_one_result_each(alias: str, tmp_path: Path) -> None:
    """Also: a Django Q2 settings module (Q_CLUSTER with orm, retry, timeout, workers) runs unchanged."""
    widgets = make_widgets(alias, 500)
    client = client_for(alias)
    ids = client.async_tasks("djtest_app.tasks.touch_widget", [(w,) for w in widgets])
    log = tmp_path / "cluster.log"
    with qcluster(cluster_env(alias), log):
        wait_for(lambda: Task.objects.using(alias).count() >= 500, 180, "500 results", log)
        if alias == "default":  # the project's own settings point there
            reset()
            wait_for(lambda: [s.name for s in compat.Stat.get_all()] == ["djtest"], 30, "a live cluster", log)
    assert sorted(Task.objects.using(alias).values_list("id", flat=True)) == sorted(ids)
    assert Success.objects.using(alias).count() == 500 and not Failure.objects.using(alias).exists()
    assert set(Widget.objects.using(alias).values_list("runs", flat=True)) == {1}
    assert client.result(ids[7]) == "w7"
    assert "Q Cluster" in log.read_text() and "has stopped." in log.read_text()
    client.close()


def test_two_clusters_on_postgresql_run_each_of_1000_tasks_once(tmp_path: Path, postgres: object) -> None:
    if postgres is None:
        pytest.skip("PostgreSQL is not installed")
    alias = "pg"
    widgets = make_widgets(alias, 1000)
    client = client_for(alias)
    client.async_tasks("djtest_app.tasks.touch_widget", [(w,) for w in widgets])
    env = cluster_env(alias, bulk=20)
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    with qcluster(env, logs[0]), qcluster(env, logs[1]):
        wait_for(lambda: Task.objects.using(alias).count() >= 1000, 200, "1000 results", logs[0])
    assert Success.objects.using(alias).count() == 1000
    runs = list(Widget.objects.using(alias).values_list("runs", flat=True))
    assert runs == [1] * 1000, f"run twice: {sum(r > 1 for r in runs)}, never: {runs.count(0)}"
    clusters = set(Task.objects.using(alias).values_list("cluster", flat=True))
    assert clusters == {"djtest"}
    client.close()


def test_a_postgresql_crash_and_restart_mid_run_loses_no_task(tmp_path: Path, postgres: object) -> None:
    if postgres is None:
        pytest.skip("PostgreSQL is not installed")
    alias = "pg"
    widgets = make_widgets(alias, 600)
    client = client_for(alias)
    retry = ("django.db.utils.OperationalError", "django.db.utils.InterfaceError")
    client.async_tasks(
        "djtest_app.tasks.touch_widget", [(w,) for w in widgets], retry_on=retry, retry_delay=0.2
    )
    log = tmp_path / "cluster.log"
    env = cluster_env(alias, bulk=10, max_attempts=0)
    with qcluster(env, log) as cluster:
        wait_for(lambda: Task.objects.using(alias).count() >= 100, 120, "100 results", log)
        from django.db import connections

        connections.close_all()
        postgres.crash()  # type: ignore[attr-defined]
        postgres.start()  # type: ignore[attr-defined]
        wait_for(lambda: Success.objects.using(alias).count() >= 600, 180, "600 successes after restart", log)
        assert cluster.poll() is None, "the cluster died with the database"
        assert stop(cluster) == 0
    assert "cannot reach the broker" in log.read_text()  # the crash hit a running cluster
    assert Success.objects.using(alias).count() == 600
    assert Widget.objects.using(alias).filter(runs=0).count() == 0
    assert Widget.objects.using(alias).aggregate(total=Sum("runs"))["total"] >= 600
    client.close()


def test_stale_connections_after_a_database_restart_do_not_fail_tasks(
    tmp_path: Path, postgres: object
) -> None:
    """Django Q2 issue: "connection already closed" after a restart; no retry_on here."""
    if postgres is None:
        pytest.skip("PostgreSQL is not installed")
    alias = "pg"
    widgets = make_widgets(alias, 40)
    client = client_for(alias)
    log = tmp_path / "cluster.log"
    env = {**cluster_env(alias, workers=1, recycle=0), "QFRAME_TEST_PG_PERSISTENT": "1"}
    with qcluster(env, log):
        client.async_tasks("djtest_app.tasks.touch_widget", [(w,) for w in widgets[:20]])
        wait_for(lambda: Task.objects.using(alias).count() >= 20, 120, "20 results", log)
        from django.db import connections

        connections.close_all()
        postgres.crash()  # type: ignore[attr-defined]
        postgres.start()  # type: ignore[attr-defined]
        client.close()
        client = client_for(alias)
        client.async_tasks("djtest_app.tasks.touch_widget", [(w,) for w in widgets[20:]])
        wait_for(lambda: Task.objects.using(alias).count() >= 40, 120, "40 results", log)
    failures = list(Failure.objects.using(alias).values_list("name", flat=True))
    assert failures == [], log.read_text()[-2000:]
    assert set(Widget.objects.using(alias).values_list("runs", flat=True)) == {1}
    client.close()


def test_a_schedule_made_with_compat_runs_in_a_qcluster(tmp_path: Path) -> None:
    from django.test import override_settings

    with override_settings(Q_CLUSTER={"name": "djtest", "orm": "default", "retry": 30, "timeout": 20}):
        reset()
        compat.schedule("djtest_app.tasks.add", 20, 22, name="soon", schedule_type=compat.Schedule.ONCE)
    reset()
    log = tmp_path / "cluster.log"
    with qcluster(cluster_env("default", workers=1), log):
        wait_for(
            lambda: Task.objects.filter(func="djtest_app.tasks.add").exists(), 60, "the scheduled run", log
        )
    assert Task.objects.get(func="djtest_app.tasks.add").result == 42


def test_a_spawn_started_cluster_sets_django_up_in_every_process(tmp_path: Path) -> None:
    widgets = make_widgets("default", 20)
    client = client_for("default")
    client.async_tasks("djtest_app.tasks.touch_widget", [(w,) for w in widgets])
    log = tmp_path / "cluster.log"
    with qcluster(cluster_env("default", start_method="spawn", workers=2), log):
        wait_for(lambda: Task.objects.count() >= 20, 120, "20 results", log)
    assert Success.objects.count() == 20
    client.close()
