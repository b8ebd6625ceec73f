"""A real ``qframe cluster`` (SQLite default, separate processes) scraped over HTTP.

The producer is this test process: it counts ``qframe_tasks_enqueued_total`` in its own
default registry, as any producer does; the cluster's sentinel serves every other metric.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from qframe.client import Client
from qframe.config import load as load_config
from qframe.testing.cluster import ClusterProcess
from qframe.testing.servers import free_port

SUCCESSES, FAILURES, RETRIED, TIMED_OUT, DELAYED = 140, 30, 20, 1, 7
QUEUE = "metrics"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def enqueued_here(task: str) -> float:
    """This producer's ``qframe_tasks_enqueued_total`` for ``task`` on the test queue."""
    return REGISTRY.get_sample_value("qframe_tasks_enqueued_total", {"queue": QUEUE, "task": task}) or 0.0


def settled(port: int, deadline: float) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The scrape once every result is counted and the status shows the end, or the last one at ``deadline``.

    The monitor counts a result right after saving it, so a fetched result may be counted
    a moment later; the tests then assert on what the endpoint showed.
    """
    finished = SUCCESSES + FAILURES + RETRIED + TIMED_OUT
    while True:
        samples = scrape(port)
        done = total(samples, "qframe_tasks_succeeded_total") + total(samples, "qframe_tasks_failed_total")
        status = (
            total(samples, "qframe_queue_depth"),
            total(samples, "qframe_tasks_leased"),
            total(samples, "qframe_workers_alive"),
        )
        shown = done >= finished and status == (DELAYED, 0, 2)  # a status published after the last ack
        if shown or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


@pytest.fixture(scope="module", params=["fork", "forkserver", "spawn"])
def run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, object]]:
    """Run 191 tasks (successes, failures, retried failures, a timeout) plus 7 delayed ones.

    Under each start method: every one must bring the cluster's processes into its directory.
    """
    tmp = tmp_path_factory.mktemp("live")
    port = free_port()
    env = {
        "QFRAME_BROKER_URL": f"sqlite:///{tmp}/q.db",
        "QFRAME_NAME": QUEUE,
        "QFRAME_WORKERS": "2",
        "QFRAME_GUARD_CYCLE": "0.2",
        "QFRAME_START_METHOD": request.param,
        "QFRAME_PLUGINS": "prometheus",
        "QFRAME_PROMETHEUS_PORT": str(port),
        "QFRAME_PROMETHEUS_ADDRESS": "127.0.0.1",
        "QFRAME_PROMETHEUS_DIR": str(tmp / "metrics"),
        "QFRAME_PROMETHEUS_TEXTFILE": str(tmp / "qframe.prom"),
    }
    client = Client(load_config(environ=env, cwd=tmp))
    before = {task: enqueued_here(task) for task in ("math.floor", "math.sqrt", "time.sleep")}
    with ClusterProcess(tmp, env, lifetime=170) as cluster:
        cluster.wait_running(60)
        ids = [client.async_task("math.floor", n + 0.5) for n in range(SUCCESSES)]
        ids += [client.async_task("math.sqrt", "not a number") for _ in range(FAILURES)]
        ids += [
            client.async_task("math.sqrt", "again", ack_failure=False, max_attempts=2) for _ in range(RETRIED)
        ]
        ids += [client.async_task("time.sleep", 30, timeout=1)]
        during = scrape(port)  # while most tasks are still queued or running
        for task_id in ids:
            assert client.fetch(task_id, wait=90) is not None, f"task {task_id} has no result"
        for _ in range(DELAYED):
            client.async_task("math.floor", 1.5, delay=3600)
        samples = settled(port, deadline=time.monotonic() + 30)
        cluster.stop()
    enqueued = {task: enqueued_here(task) - count for task, count in before.items()}
    client.close()
    yield {"samples": samples, "during": during, "enqueued": enqueued, "tmp": tmp}


def test_enqueued_equals_succeeded_plus_failed_plus_waiting_per_queue(run: dict[str, object]) -> None:
    samples = run["samples"]
    assert isinstance(samples, dict) and isinstance(run["enqueued"], dict)
    finished = sum(
        total(samples, f"qframe_tasks_{outcome}_total", queue=QUEUE) for outcome in ("succeeded", "failed")
    )
    assert sum(run["enqueued"].values()) == finished + DELAYED


def test_tasks_past_max_attempts_count_as_failed_and_as_dead_lettered(run: dict[str, object]) -> None:
    samples = run["samples"]
    assert isinstance(samples, dict)
    assert total(samples, "qframe_tasks_dead_lettered_total", queue=QUEUE) == RETRIED


def test_counters_count_each_outcome_by_queue_and_task(run: dict[str, object]) -> None:
    samples = run["samples"]
    assert isinstance(samples, dict)
    assert total(samples, "qframe_tasks_succeeded_total", queue=QUEUE, task="math.floor") == SUCCESSES
    assert total(samples, "qframe_tasks_failed_total", queue=QUEUE, task="math.sqrt") == FAILURES + RETRIED
    assert total(samples, "qframe_tasks_failed_total", queue=QUEUE, task="time.sleep") == TIMED_OUT
    assert total(samples, "qframe_tasks_retried_total", queue=QUEUE, task="math.sqrt") == RETRIED
    assert total(samples, "qframe_tasks_timed_out_total", queue=QUEUE, task="time.sleep") == TIMED_OUT
    expected = {"math.floor": SUCCESSES + DELAYED, "math.sqrt": FAILURES + RETRIED, "time.sleep": 1}
    assert run["enqueued"] == expected


def test_a_scrape_during_the_run_shows_counters_that_only_grow(run: dict[str, object]) -> None:
    during, after = run["during"], run["samples"]
    assert isinstance(during, dict) and isinstance(after, dict)
    counted = {key: value for key, value in during.items() if key[0].endswith("_total")}
    assert all(after[key] >= value for key, value in counted.items())


def test_histograms_have_one_observation_per_run(run: dict[str, object]) -> None:
    samples = run["samples"]
    assert isinstance(samples, dict)
    runs = SUCCESSES + FAILURES + 2 * RETRIED + TIMED_OUT
    for histogram in ("qframe_task_run_seconds", "qframe_task_queue_wait_seconds"):
        assert total(samples, f"{histogram}_count", queue=QUEUE) == runs
        assert total(samples, f"{histogram}_bucket", queue=QUEUE, le="+Inf") == runs
        assert total(samples, f"{histogram}_sum", queue=QUEUE) > 0
    assert total(samples, "qframe_task_run_seconds_sum", task="time.sleep") >= 1.0  # killed at its timeout


def test_gauges_show_the_queue_depth_and_the_workers(run: dict[str, object]) -> None:
    samples = run["samples"]
    assert isinstance(samples, dict)
    assert total(samples, "qframe_queue_depth", queue=QUEUE) == DELAYED
    assert total(samples, "qframe_tasks_leased", queue=QUEUE) == 0
    assert total(samples, "qframe_workers_alive", queue=QUEUE) == 2
    assert total(samples, "qframe_workers_configured", queue=QUEUE) == 2
    assert total(samples, "qframe_cluster_reincarnations", queue=QUEUE) >= TIMED_OUT  # the killed worker


def test_the_textfile_keeps_the_final_values_and_the_directory_is_removed(run: dict[str, object]) -> None:
    tmp = run["tmp"]
    assert isinstance(tmp, Path)
    families = {f.name: f for f in text_string_to_metric_families((tmp / "qframe.prom").read_text())}
    succeeded = sum(s.value for s in families["qframe_tasks_succeeded"].samples if s.name.endswith("_total"))
    assert succeeded == SUCCESSES
    assert list((tmp / "metrics").iterdir()) == []
