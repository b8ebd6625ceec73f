"""One trace per task, from the producer (this process) into a real cluster's workers.

The cluster and this producer both export to one JSON-lines file (``otel_exporter =
"file"``): the workers are other processes, so an in-memory exporter could not see them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qframe.client import Client
from qframe.config import load as load_config
from qframe.testing import wait_until
from qframe.testing.cluster import ClusterProcess

SUCCESSES, FAILURES = 15, 5


def spans_in(path: Path) -> list[dict[str, Any]]:
    """Every span exported to ``path`` so far."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module", params=["fork", "spawn"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Successes, failures and one retried task through a two-worker cluster, forked or spawned."""
    tmp = tmp_path_factory.mktemp("otel")
    spans_file = tmp / "spans.jsonl"
    env = {
        "QFRAME_BROKER_URL": f"sqlite:///{tmp}/q.db",
        "QFRAME_NAME": "traced",
        "QFRAME_WORKERS": "2",
        "QFRAME_START_METHOD": request.param,
        "QFRAME_PLUGINS": "otel",
        "QFRAME_OTEL_EXPORTER": "file",
        "QFRAME_OTEL_FILE": str(spans_file),
    }
    client = Client(load_config(environ=env, cwd=tmp))
    with ClusterProcess(tmp, env, lifetime=110) as cluster:
        cluster.wait_running(60)
        ok = [client.async_task("math.floor", n + 0.5) for n in range(SUCCESSES)]
        failed = [client.async_task("math.sqrt", "not a number") for _ in range(FAILURES)]
        retried = client.async_task("math.sqrt", "again", ack_failure=False, max_attempts=2)
        for task_id in [*ok, *failed, retried]:
            assert client.fetch(task_id, wait=60) is not None
        runs = SUCCESSES + FAILURES + 2
        wait_until(lambda: sum(s["kind"] == "SpanKind.CONSUMER" for s in spans_in(spans_file)) >= runs, 30)
        cluster.stop()
    client.close()
    yield {"spans": spans_in(spans_file), "ok": ok, "failed": failed, "retried": retried}


def of_task(run: dict[str, Any], task_id: str, kind: str) -> list[dict[str, Any]]:
    return [
        s
        for s in run["spans"]
        if s["attributes"].get("qframe.task.id") == task_id and s["kind"] == f"SpanKind.{kind}"
    ]


def test_the_producer_span_is_the_parent_of_the_worker_span_in_another_process(run: dict[str, Any]) -> None:
    for task_id in [*run["ok"], *run["failed"]]:
        [enqueue] = of_task(run, task_id, "PRODUCER")
        [execute] = of_task(run, task_id, "CONSUMER")
        assert execute["parent_id"] == enqueue["context"]["span_id"]
        assert execute["context"]["trace_id"] == enqueue["context"]["trace_id"]
        assert enqueue["resource"]["attributes"]["process.pid"] == os.getpid()
        assert execute["resource"]["attributes"]["process.pid"] != os.getpid()


def test_one_trace_per_task(run: dict[str, Any]) -> None:
    tasks = [*run["ok"], *run["failed"], run["retried"]]
    traces = {of_task(run, task_id, "PRODUCER")[0]["context"]["trace_id"] for task_id in tasks}
    assert len(traces) == len(tasks)


def test_spans_carry_task_id_name_queue_and_attempt(run: dict[str, Any]) -> None:
    runs = of_task(run, run["retried"], "CONSUMER")
    assert sorted(s["attributes"]["qframe.task.attempt"] for s in runs) == [1, 2]
    [enqueue] = of_task(run, run["retried"], "PRODUCER")
    assert {s["parent_id"] for s in runs} == {enqueue["context"]["span_id"]}
    for span in [*runs, enqueue]:
        assert span["attributes"]["qframe.queue"] == "traced"
        assert span["attributes"]["qframe.task.func"] == "math.sqrt"
        assert span["attributes"]["qframe.task.name"]  # the four-word name of the id
    assert enqueue["attributes"]["messaging.message.id"]


def test_a_task_that_raises_has_its_exception_on_the_worker_span(run: dict[str, Any]) -> None:
    for task_id in run["failed"]:
        [execute] = of_task(run, task_id, "CONSUMER")
        assert execute["status"]["status_code"] == "ERROR"
        [event] = [e for e in execute["events"] if e["name"] == "exception"]
        assert event["attributes"]["exception.type"] == "TypeError"
    for task_id in run["ok"]:
        [execute] = of_task(run, task_id, "CONSUMER")
        assert execute["status"]["status_code"] == "UNSET" and not execute["events"]
