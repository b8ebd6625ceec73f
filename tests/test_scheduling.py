"""The scheduler extension point: the sentinel's ticker, the schedule store it needs, and two clusters
sharing one schedule."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from conftest import APP, Lab

from qframe.client import Client
from qframe.cluster.scheduling import SchedulerTicker
from qframe.config import Config
from qframe.drivers import available
from qframe.errors import ConfigError, DriverNotFound
from qframe.plugins import make_plugin_manager
from qframe.schedulers import schedule_store
from qframe.testing import wait_until
from qframe.testing.cluster import ClusterProcess

pytestmark = pytest.mark.timeout(120)

#: "none" in the core's own test run; "default" where qframe-scheduler is installed too.
INSTALLED = ", ".join(available("scheduler")) or "none"


def config_in(tmp_path: Path, **options: object) -> Config:
    return Config(broker_url=f"sqlite:///{tmp_path}/q.db", plugins=(), **options)  # type: ignore[arg-type]


def ticker(config: Config) -> SchedulerTicker:
    return SchedulerTicker(config, make_plugin_manager(config))


def test_no_scheduler_configured_opens_no_connection(tmp_path: Path) -> None:
    idle = ticker(config_in(tmp_path, scheduler=""))
    assert idle.tick() == 0
    idle.close()
    assert not (tmp_path / "q.db").exists()


def test_an_unknown_scheduler_is_refused_in_one_line(tmp_path: Path) -> None:
    message = rf"^unknown scheduler 'nope'; installed schedulers: {INSTALLED}$"
    with pytest.raises(DriverNotFound, match=message):
        ticker(config_in(tmp_path, scheduler="nope"))


def test_a_tick_returns_how_many_tasks_the_scheduler_enqueued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QFRAME_TEST_LOG", str(tmp_path / "runs.log"))
    config = config_in(tmp_path, scheduler="qframe_test_schedulers:EverySecond")
    busy = ticker(config)
    try:
        assert busy.tick() == 1
        assert Client(config).queue_size() == 1
    finally:
        busy.close()


def test_a_failing_scheduler_is_logged_once_per_outage_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = ticker(config_in(tmp_path, scheduler="qframe_test_schedulers:FailsTwice"))
    with caplog.at_level(logging.INFO, logger="qframe"):
        assert [flaky.tick() for _ in range(4)] == [0, 0, 0, 0]
    flaky.close()
    assert [r.getMessage() for r in caplog.records] == [
        "scheduler qframe_test_schedulers:FailsTwice failed: RuntimeError: early ticks fail",
        "scheduler qframe_test_schedulers:FailsTwice works again",
    ]


def test_a_tick_longer_than_the_guard_cycle_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    slow = ticker(config_in(tmp_path, scheduler="qframe_test_schedulers:Slow", guard_cycle=0.05))
    with caplog.at_level(logging.WARNING, logger="qframe"):
        slow.tick()
    slow.close()
    assert "for one tick (guard_cycle is 0.05 s); it delays the sentinel" in caplog.text


def test_the_schedule_store_must_fill_the_role(tmp_path: Path) -> None:
    config = config_in(tmp_path, store="qframe_test_brokers:ResultsOnly")
    with pytest.raises(ConfigError) as error:
        schedule_store(config)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("store 'qframe_test_brokers:ResultsOnly' cannot keep schedules")
    assert "set store to one that can: " in message and "sqlite" in message.split("can: ")[1]


# -- in real clusters ----------------------------------------------------------------------------


def claims_by_slot(lab: Lab) -> dict[int, list[tuple[str, str]]]:
    """``slot -> [(owner, won|lost), ...]`` from the test scheduler's records."""
    claims: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for _, slot, owner, outcome, _pid in lab.runs("schedule-claim"):
        claims[int(slot)].append((owner, outcome))
    return claims


def test_two_clusters_on_one_queue_enqueue_each_slot_once(lab: Lab) -> None:
    lab.configure(scheduler="qframe_test_schedulers:EverySecond")
    first, second = lab.cluster(), lab.cluster()

    def contested() -> list[int]:
        return [slot for slot, claims in claims_by_slot(lab).items() if len({o for o, _ in claims}) == 2]

    wait_until(lambda: len(contested()) >= 3, timeout=60)
    assert first.stop() == 0
    assert second.stop() == 0
    claims = claims_by_slot(lab)
    won = sorted(slot for slot, tries in claims.items() for _, outcome in tries if outcome == "won")
    lab.configure(scheduler="")
    drain = lab.cluster()  # runs what the stopped clusters left queued
    wait_until(lambda: lab.client.count_group("every-second") >= len(won), timeout=60)
    assert drain.stop() == 0
    for slot in contested():
        assert sorted(outcome for _, outcome in claims[slot]) == ["lost", "won"], slot
    assert Counter(int(row[1]) for row in lab.runs("inc")) == Counter(won)
    assert len(won) == len(set(won)) == len(claims)
    assert lab.client.count_group("every-second") == len(won)


def test_a_failing_scheduler_never_stops_the_cluster(lab: Lab) -> None:
    lab.configure(scheduler="qframe_test_schedulers:Broken")
    cluster = lab.cluster()
    wait_until(lambda: len(lab.runs("broken-tick")) >= 3, timeout=30)
    assert lab.client.result(lab.client.async_task("qframe.testing.tasks.inc", 1), wait=20) == 2
    assert cluster.stop() == 0
    failures = [line for line in cluster.lines if "scheduler qframe_test_schedulers:Broken failed" in line]
    assert len(failures) == 1
    assert failures[0].endswith("failed: RuntimeError: clock broken")


def test_a_cluster_with_an_unknown_scheduler_does_not_start(lab: Lab) -> None:
    lab.configure(scheduler="nope")
    with ClusterProcess(APP, lab.env) as cluster:
        assert cluster.process.wait(60) != 0
        assert f"unknown scheduler 'nope'; installed schedulers: {INSTALLED}" in cluster.log
        assert "running." not in cluster.log
