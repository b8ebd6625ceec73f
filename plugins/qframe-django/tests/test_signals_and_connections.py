"""Django Q2's signals through a real cluster; connection hygiene across forks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clusters import cluster_env, qcluster, wait_for
from django.db import connections

from qframe.client import Client
from qframe_django import hooks
from qframe_django.conf import load_config
from qframe_django.models import Task

pytestmark = [pytest.mark.timeout(120), pytest.mark.django_db(transaction=True, databases="__all__")]


def test_django_q2_receivers_get_every_signal_from_a_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signal_log = tmp_path / "signals.log"
    monkeypatch.setenv("QFRAME_TEST_SIGNAL_LOG", str(signal_log))
    client = Client(load_config({"name": "djtest"}))
    client.async_task("djtest_app.tasks.add", 2, 3, task_name="adding")
    env = {**cluster_env("default", workers=1), "QFRAME_TEST_SIGNAL_LOG": str(signal_log)}
    log = tmp_path / "cluster.log"
    with qcluster(env, log):
        wait_for(lambda: Task.objects.filter(name="adding").exists(), 60, "the result", log)
    client.close()
    lines = signal_log.read_text().splitlines()
    assert "pre_enqueue django_q adding" in lines
    assert "pre_execute django_q add adding" in lines
    assert "post_execute django_q adding 5" in lines
    assert "post_spawn django_q worker" in lines


def test_a_forked_process_forgets_inherited_connections_without_closing_them(alias: str) -> None:
    connection = connections[alias]
    connection.ensure_connection()
    parent_socket = connection.connection
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a new cluster process does at boot
        try:
            hooks.qframe_process_boot(role="worker", name="test", config=None)  # type: ignore[arg-type]
            ok = connection.connection is None and hooks._inherited[-1] is parent_socket
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    os.close(read)
    with connection.cursor() as cursor:  # the parent's session is intact
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert connection.connection is parent_socket


def test_the_starting_cluster_closes_its_connections_before_forking(alias: str) -> None:
    connections[alias].ensure_connection()
    hooks.qframe_cluster_starting(config=None)  # type: ignore[arg-type]
    assert connections[alias].connection is None
