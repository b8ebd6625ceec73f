"""The task API end to end on the SQLite default (the shared :class:`TaskApiContract`), and its options."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from conftest import Lab

import qframe
from qframe.client import Client
from qframe.cluster.retries import backoff
from qframe.config import load as load_config
from qframe.countdown import delay_of
from qframe.errors import ConfigError, InvalidArgument
from qframe.retry_options import retry_fields
from qframe.testing.task_api import TaskApiContract


class TestSqliteTaskApi(TaskApiContract):
    """The contract on a SQLite file broker and store."""

    @pytest.fixture
    def task_lab(self, lab: Lab) -> Lab:
        """The core tests' lab."""
        return lab


def test_countdown_is_seconds_from_now() -> None:
    assert delay_of({"countdown": 5}) == 5.0
    assert delay_of({"delay": 1.5}) == 1.5
    assert delay_of({}) == 0.0


def test_eta_is_the_seconds_until_that_moment_and_a_past_eta_is_due_at_once() -> None:
    now = 1_000_000.0
    eta = datetime.datetime.fromtimestamp(now + 30, datetime.UTC)
    assert delay_of({"eta": eta}, now=now) == pytest.approx(30.0)
    assert delay_of({"eta": eta}, now=now + 60) == 0.0


def test_a_naive_eta_is_refused_in_one_line() -> None:
    with pytest.raises(InvalidArgument, match=r"^eta 2030-01-01T00:00:00 is a naive datetime: give it"):
        delay_of({"eta": datetime.datetime(2030, 1, 1)})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"countdown": 1, "eta": datetime.datetime.now(datetime.UTC)}, "give one of delay, countdown and"),
        ({"countdown": -1}, "countdown must be a number of seconds, 0 or more, got -1"),
        ({"countdown": "5"}, "countdown must be a number of seconds, 0 or more, got '5'"),
        ({"eta": 5}, "eta must be a datetime, got int 5"),
    ],
)
def test_bad_delay_options_are_refused_in_one_line(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        delay_of(options)


def test_a_naive_eta_enqueues_nothing(lab: Lab) -> None:
    client: Client = lab.client
    with pytest.raises(InvalidArgument, match="naive datetime"):
        client.async_task("qframe.testing.tasks.inc", 1, eta=datetime.datetime(2030, 1, 1))
    with pytest.raises(InvalidArgument, match="naive datetime"):
        client.async_tasks("qframe.testing.tasks.inc", [(1,)], eta=datetime.datetime(2030, 1, 1))
    assert client.queue_size() == 0


def test_countdown_and_eta_are_options_not_arguments_of_the_task(lab: Lab) -> None:
    lab.client.async_task("qframe.testing.tasks.echo_kwargs", countdown=0, eta=None)
    assert lab.client.queue_size() == 1


def test_exponential_backoff_doubles_up_to_its_cap_and_fixed_stays() -> None:
    assert [backoff(n, "exponential", 1.0, 5.0, jitter=False) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert [backoff(n, "fixed", 3.0, 600.0, jitter=False) for n in (1, 5)] == [3.0, 3.0]


def test_full_jitter_waits_between_zero_and_the_backoff() -> None:
    waits = [backoff(3, "exponential", 1.0, 600.0, jitter=True) for _ in range(200)]
    assert all(0.0 <= wait <= 4.0 for wait in waits) and len(set(waits)) > 1


def test_retry_options_become_task_fields_with_exception_paths() -> None:
    fields = retry_fields({"retry_on": (ValueError, "http.client.HTTPException"), "backoff": "fixed"})
    assert fields == {"retry_on": ("builtins.ValueError", "http.client.HTTPException"), "backoff": "fixed"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_on": 3}, "retry_on must name exception types, got 3"),
        ({"retry_on": (int,)}, "retry_on must name exception types, got <class 'int'>"),
        ({"backoff": "linear"}, "backoff must be 'fixed' or 'exponential', got 'linear'"),
        ({"max_backoff": -2}, "max_backoff must be a number of seconds, 0 or more, got -2"),
    ],
)
def test_bad_retry_options_are_refused_in_one_line(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        retry_fields(options)


def test_a_cluster_backoff_other_than_fixed_or_exponential_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="option 'backoff' must be 'fixed' or 'exponential', got 'linear'"):
        load_config(environ={"QFRAME_BACKOFF": "linear"}, cwd=tmp_path)


def test_current_task_is_none_outside_a_task() -> None:
    assert qframe.current_task() is None
