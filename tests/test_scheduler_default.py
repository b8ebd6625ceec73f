"""The core's side of qframe-scheduler: the default scheduler and ``qframe.schedule`` without the plugin."""

from __future__ import annotations

import sys

import pytest

import qframe
from qframe import drivers
from qframe.config import Config
from qframe.errors import ConfigError
from qframe.schedulers import scheduler_choice


def test_the_default_scheduler_runs_nothing_while_no_driver_of_that_name_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(drivers, "available", lambda kind: [])
    assert Config().scheduler == "default"
    assert scheduler_choice(Config()) == ""
    assert scheduler_choice(Config(scheduler="mine:Clock")) == "mine:Clock"


def test_the_default_scheduler_runs_when_installed_and_empty_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(drivers, "available", lambda kind: ["default"])
    assert scheduler_choice(Config()) == "default"
    assert scheduler_choice(Config(scheduler="")) == ""


def test_schedule_without_the_plugin_names_the_distribution_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "qframe_scheduler", None)
    with pytest.raises(ConfigError) as error:
        qframe.schedule("qframe.testing.tasks.inc", 1)
    needs = "schedule() needs the qframe-scheduler distribution: pip install qframe-scheduler"
    assert str(error.value) == needs
