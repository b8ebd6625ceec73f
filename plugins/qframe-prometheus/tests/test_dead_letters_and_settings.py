"""The dead-letter counter across processes, scrapes while a process creates its file, bad settings."""

from __future__ import annotations

import multiprocessing
import socket
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from qframe.config import load as load_config
from qframe.errors import PluginError
from qframe.stores.base import DeadLetter
from qframe.testing.cluster import ClusterProcess
from qframe.testing.servers import free_port
from qframe_prometheus.exposition import ClusterGauges, Exposition
from qframe_prometheus.settings import Settings


def dead_letter_in_a_cluster_process(directory: str, count: int) -> None:
    """What a pusher or monitor does: join the cluster's directory, then the core calls the hook."""
    from qframe_prometheus import hooks, multiprocess

    multiprocess.join(Path(directory))
    for n in range(count):
        hooks.qframe_task_dead_lettered("orders", DeadLetter(f"m-{n}", "bad signature", b"signed"))


def test_dead_lettered_counter_sums_the_processes_that_moved_messages_aside(tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    children = [
        spawn.Process(target=dead_letter_in_a_cluster_process, args=(str(tmp_path), n)) for n in (2, 3)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    labels = {"queue": "orders", "task": ""}
    assert registry.get_sample_value("qframe_tasks_dead_lettered_total", labels) == 5


def test_a_scrape_while_a_process_creates_its_file_still_shows_the_others(tmp_path: Path) -> None:
    child = multiprocessing.get_context("spawn").Process(
        target=dead_letter_in_a_cluster_process, args=(str(tmp_path), 2)
    )
    child.start()
    child.join(60)
    (
        tmp_path / "counter_999999.db"
    ).touch()  # created, not sized yet: what a starting process leaves for a moment
    exposition = Exposition(tmp_path, ClusterGauges("orders", 1), textfile="")
    labels = {"queue": "orders", "task": ""}
    assert exposition.registry.get_sample_value("qframe_tasks_dead_lettered_total", labels) == 2


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"prometheus_port": 70000}, "prometheus_port must be between 1 and 65535, not 70000"),
        (
            {"prometheus_textfile": "/tmp/qframe.txt"},
            "prometheus_textfile '/tmp/qframe.txt' must end in .prom",
        ),
        ({"prometheus_textfile": "/nonexistent/q.prom"}, "directory /nonexistent is not writable"),
    ],
)
def test_settings_that_cannot_work_are_one_line_errors(options: dict[str, object], error: str) -> None:
    config = load_config({"plugins": ("prometheus",), **options}, environ={})
    with pytest.raises(PluginError, match=error):
        Settings.of(config).check()


def test_a_bad_textfile_stops_the_cluster_before_it_starts(tmp_path: Path) -> None:
    env = {
        "QFRAME_BROKER_URL": f"sqlite:///{tmp_path}/q.db",
        "QFRAME_PLUGINS": "prometheus",
        "QFRAME_PROMETHEUS_TEXTFILE": str(tmp_path / "metrics.txt"),
    }
    with ClusterProcess(tmp_path, env, lifetime=60) as cluster:
        assert cluster.process.wait(60) != 0
    assert "must end in .prom (node_exporter reads no other)" in cluster.log


def test_a_port_in_use_stops_the_cluster_with_one_line_naming_it(tmp_path: Path) -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        env = {
            "QFRAME_BROKER_URL": f"sqlite:///{tmp_path}/q.db",
            "QFRAME_PLUGINS": "prometheus",
            "QFRAME_PROMETHEUS_PORT": str(port),
            "QFRAME_PROMETHEUS_ADDRESS": "127.0.0.1",
            "QFRAME_PROMETHEUS_DIR": str(tmp_path / "metrics"),
        }
        with ClusterProcess(tmp_path, env, lifetime=60) as cluster:
            assert cluster.process.wait(60) != 0
    assert (
        f"cannot serve prometheus metrics on 127.0.0.1:{port}: [Errno 98] Address already in use"
        in cluster.log
    )
    assert "Q Cluster" in cluster.log and "running." not in cluster.log
