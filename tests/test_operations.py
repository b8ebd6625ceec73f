"""``qframe info``, ``monitor`` and ``memory`` on the SQLite default (the shared contract), the live
view in a real terminal, the heartbeat's new fields and the masking of ``info --config``."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import APP, Lab
from rich.text import Text

from qframe.cluster.gauges import GaugeWriter, Throughput, read_gauges
from qframe.cluster.stat import Stat, read_statuses, status_codec
from qframe.commands.monitor import cluster_row
from qframe.commands.settings import effective_settings, masked_url
from qframe.commands.view import duration
from qframe.config import load as load_config
from qframe.testing import wait_until
from qframe.testing.operations import OperationsContract, run_qframe, table_row
from qframe.testing.servers import require_binary


class TestSqliteOperations(OperationsContract):
    """The contract on a SQLite file broker and store."""

    @pytest.fixture
    def ops_lab(self, lab: Lab) -> Lab:
        """The SQLite lab (two workers, a 0.2 s guard cycle)."""
        return lab


def poll(predicate: Callable[[], str | None], timeout: float) -> str:
    """The first non-empty value of ``predicate()``, checked every 0.2 s, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(0.2)
    return value


def heartbeat(lab: Lab) -> Stat:
    """The lab's one cluster's status, once it published one."""
    stat: Stat = wait_until(lambda: next(iter(read_statuses(lab.client.config)), None), timeout=30)
    return stat


class Terminal:
    """A real terminal: one tmux session, on a tmux server of the test's own."""

    def __init__(self, tmux: str, directory: Path) -> None:
        self.base = [tmux, "-S", str(directory / "tmux.sock")]
        self.directory = directory

    def run(self, env: dict[str, str], qframe_args: str) -> None:
        """Run ``qframe ARGS`` in a 200x40 terminal; ``<name> exited <code>`` is printed after it."""
        script = self.directory / "session.sh"
        exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())
        name = qframe_args.split()[0]
        command = f"{shlex.quote(sys.executable)} -m qframe {qframe_args}"
        script.write_text(f'{exports}{command}\necho "{name} exited $?"\nsleep 120\n')
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", "ops", "-x", "200", "-y", "40", f"sh {script}"],
            check=True,
            timeout=30,
            env={**os.environ, "TERM": "xterm-256color"},
        )

    def screen(self) -> str:
        """What the terminal shows now."""
        done = subprocess.run([*self.base, "capture-pane", "-p", "-t", "ops"], capture_output=True, text=True)
        return done.stdout

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """The screen, once it shows ``text``."""
        return poll(lambda: screen if text in (screen := self.screen()) else None, timeout)

    def press(self, key: str) -> None:
        """Type ``key``."""
        subprocess.run([*self.base, "send-keys", "-t", "ops", key], check=True, timeout=30)

    def close(self) -> None:
        """Kill the tmux server and what runs in it."""
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    """A :class:`Terminal`, closed at the end."""
    term = Terminal(require_binary("tmux"), tmp_path)
    yield term
    term.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("command", "title"),
    [
        ("monitor", r"qframe monitor: 1 cluster\(s\)"),
        ("memory --workers", r"qframe memory \(MiB\): 1 cluster\(s\)"),
    ],
)
def test_the_live_view_redraws_every_second_in_a_terminal_and_quits_on_q(
    lab: Lab, terminal: Terminal, command: str, title: str
) -> None:
    lab.cluster()
    stat = heartbeat(lab)
    terminal.run(lab.env, command)

    def title_clock(text: str) -> str | None:
        found = re.search(title + r" at (\d\d:\d\d:\d\d)", text)
        return found.group(1) if found and stat.label in text and "q quits" in text else None

    first = poll(lambda: title_clock(terminal.screen()), timeout=60)
    poll(lambda: (clock := title_clock(terminal.screen())) and clock != first and clock, timeout=30)
    terminal.press("q")
    name = command.split()[0]
    assert f"{name} exited 0" in terminal.wait_for(f"{name} exited")
    assert stat.label not in terminal.screen()  # the full-screen view left the alternate screen


@pytest.mark.timeout(120)
def test_enqueue_wait_shows_a_spinner_in_a_terminal_until_the_result_arrives(
    lab: Lab, terminal: Terminal
) -> None:
    terminal.run(lab.env, "enqueue qframe.testing.tasks.inc [1] --wait 90")
    waiting = terminal.wait_for("waiting for task", timeout=60)
    task_id = re.search(r"waiting for task (\w{32})", waiting)
    assert task_id is not None and task_id.group(1) in waiting.splitlines()  # printed before the wait
    lab.cluster()
    done = terminal.wait_for("enqueue exited", timeout=60)
    assert '"result": 2' in done and "enqueue exited 0" in done
    assert "waiting for task" not in done  # the spinner clears its line when the result is in


@pytest.mark.timeout(120)
def test_enqueue_wait_prints_the_id_then_the_result_record(lab: Lab, tmp_path: Path) -> None:
    lab.cluster()
    output = run_qframe(lab, tmp_path, "enqueue", "qframe.testing.tasks.inc", "[41]", "--wait", "60")
    task_id, _, record = output.partition("\n")
    assert len(task_id) == 32
    assert json.loads(record)["id"] == task_id and json.loads(record)["result"] == 42


def test_enqueue_wait_without_a_result_in_time_exits_1_and_keeps_the_task(lab: Lab, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qframe", "enqueue", "qframe.testing.tasks.inc", "[1]", "--wait", "0.5"],
        cwd=tmp_path,
        env={**os.environ, **lab.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    task_id = done.stdout.strip()
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"qframe: no result for task {task_id} after 0.5 s"
    assert lab.client.queue_size() == 1


def test_info_config_prints_every_option_with_the_secrets_masked(lab: Lab, tmp_path: Path) -> None:
    lab.configure(
        secret_key="s3cr3t-signing-key",
        secret_key_fallbacks='["old-key-one"]',
        store_url="redis://app:hunter2@cache.internal:6380/0?db=1&password=alsosecret",
        store_options='{"api_key": "k3y", "prefix": "jobs"}',
        workers=3,
    )
    text = run_qframe(lab, tmp_path, "info", "--config")
    settings = json.loads(run_qframe(lab, tmp_path, "info", "--config", "--json"))
    for secret in ("s3cr3t-signing-key", "old-key-one", "hunter2", "alsosecret", "k3y"):
        assert secret not in text and secret not in json.dumps(settings)
    assert settings["secret_key"] == "****" and settings["secret_key_fallbacks"] == ["****"]
    assert settings["store_url"] == "redis://app:****@cache.internal:6380/0?db=1&password=****"
    assert settings["store_options"] == {"api_key": "****", "prefix": "jobs"}
    assert settings["workers"] == 3 and settings["broker_url"] == lab.env["QFRAME_BROKER_URL"]
    assert "workers = 3" in text.splitlines() and "# timeout is not set" in text.splitlines()


def test_masked_url_keeps_a_url_without_secrets_exactly_as_written() -> None:
    assert masked_url("sqlite:///srv/app/qframe.db") == "sqlite:///srv/app/qframe.db"
    assert masked_url("redis://:pw@host:6379/0") == "redis://:****@host:6379/0"
    assert masked_url("sqs://host/queue?aws_secret_access_key=x&region=eu") == (
        "sqs://host/queue?aws_secret_access_key=****&region=eu"
    )


def test_effective_settings_mask_secret_names_inside_cluster_tables() -> None:
    config = load_config({"clusters": {"long": {"secret_key": "per-queue"}}}, environ={})
    assert effective_settings(config)["clusters"] == {"long": {"secret_key": "****"}}


def test_a_pool_below_the_configured_workers_is_flagged_red() -> None:
    short = cluster_row(Stat("c" * 32, "default", "h", 1, workers=[10], configured_workers=2))[4]
    full = cluster_row(Stat("c" * 32, "default", "h", 1, workers=[10, 11], configured_workers=2))[4]
    assert isinstance(short, Text) and isinstance(full, Text)
    assert (str(short), short.style) == ("1/2", "bold red")
    assert (str(full), full.style) == ("2/2", "")


def test_a_status_with_fields_this_version_does_not_know_is_still_read() -> None:
    codec = status_codec(["key"])
    fields = {**dataclasses.asdict(Stat("c" * 32, "default", "h", 1)), "from_the_future": 1}
    assert Stat.from_bytes(codec.encode(fields), codec).name == "default"


def test_gauges_hand_the_last_counts_over_and_read_empty_before_the_first(tmp_path: Path) -> None:
    assert read_gauges(str(tmp_path), "pusher") == {}
    writer = GaugeWriter(str(tmp_path), "pusher", every=60)
    assert writer.due()
    writer.write(prefetched=3, finished=7)
    assert not writer.due()
    assert read_gauges(str(tmp_path), "pusher") == {"prefetched": 3, "finished": 7}


def test_throughput_is_a_rate_over_its_window_and_its_total_survives_a_replaced_pusher() -> None:
    meter = Throughput(window=10)
    assert meter.add(0, now=0.0) == 0.0
    assert meter.add(20, now=2.0) == 10.0
    assert meter.add(5, now=4.0) == 25 / 4  # the new pusher counts from 0: the total goes on
    assert meter.total == 25
    meter.add(5, now=30.0)
    assert meter.add(5, now=31.0) == 0.0  # nothing finished within the window


def test_durations_read_as_a_clock_and_days() -> None:
    assert (duration(5), duration(3725), duration(2 * 86400 + 61)) == ("0:00:05", "1:02:05", "2d 00:01:01")


@pytest.mark.timeout(120)
def test_results_pending_counts_the_outcomes_the_monitor_could_not_save_yet(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(APP))  # the client opens the test store too
    lab.configure(store="qframe_test_stores:BlockedSaves", store_url=f"sqlite:///{tmp_path}/results.db")
    blocked = Path(f"{lab.log_file}.blocked")
    blocked.touch()
    lab.cluster()
    task_id = lab.client.async_task("qframe.testing.tasks.inc", 1)
    config = lab.client.config
    wait_until(lambda: [s for s in read_statuses(config) if s.results_pending == 1], timeout=30)
    assert lab.client.fetch(task_id) is None
    blocked.unlink()
    record = lab.client.fetch(task_id, wait=30)
    assert record is not None and record.result == 2
    wait_until(lambda: [s for s in read_statuses(config) if s.results_pending == 0], timeout=30)


@pytest.mark.timeout(120)
def test_the_pool_lists_only_live_workers_so_a_stopped_cluster_shows_an_empty_pool_flagged(
    lab: Lab, tmp_path: Path
) -> None:
    lab.configure(guard_cycle=2)  # the last status lives 6 s after the cluster stopped
    cluster = lab.cluster()
    label = heartbeat(lab).label
    assert cluster.stop() == 0
    row = table_row(run_qframe(lab, tmp_path, "monitor", "--run-once"), (socket.gethostname(), label))
    assert (row[3], row[4]) == ("Stopped", "0/2")
