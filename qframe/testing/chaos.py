"""The soak (``nox -s chaos``): thousands of tasks through two clusters while processes and servers die.

For each broker, a producer thread enqueues the tasks in batches spread over a fixed
time while the fault driver, at random moments, SIGKILLs a worker, SIGKILLs a whole
cluster (and starts a new one) or kills and restarts the broker's server. When the time
is up the faults stop, the queue drains, and the runs ledger is checked against the
store (:func:`qframe.testing.ledger.check`). A table shows, per broker, what was done
and what it cost; the exit code is 1 if a task was lost, finished with more than one
final record, or ended as a false failure.

Full run (the figures in ``docs/reliability.md``)::

    nox -s chaos -- --duration 180

CI runs the same 5,000 tasks with 45 seconds of faults per broker (``nox`` runs the
``chaos`` session with its default arguments). Everything listens on loopback only, and
every loop is bounded by the duration or a timeout.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from qframe.drivers import available
from qframe.errors import QFrameError
from qframe.testing.cluster import ClusterProcess
from qframe.testing.lab import FaultLab, FaultTarget
from qframe.testing.ledger import Verdict
from qframe.testing.servers import RedisServer

#: The task every soak runs (it records each run; the ledger plugin records the rest).
TASK = "qframe.testing.tasks.sleepy"
#: Seconds the queue gets to drain after the last fault before what is left counts as lost.
DRAIN_TIMEOUT = 180.0
#: Enqueue batches per second of the producer.
BATCHES_PER_SECOND = 4
#: Share of the time the soak's workers are meant to be busy: a kill mostly hits a running task.
BUSY = 0.6
#: Workers per cluster.
WORKERS = 2


@dataclass
class Soak:
    """One broker's soak: what was enqueued and done to it, and the verdict."""

    broker: str
    worker_kills: int = 0
    cluster_kills: int = 0
    restarts: int = 0
    #: Whether the broker runs on a server the soak restarted (SQLite has none).
    server: bool = False
    #: Seconds from the end of the last fault until every task had its final record (None: never).
    drain: float | None = None
    verdict: Verdict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The invariant held and the queue drained."""
        return self.verdict is not None and not self.verdict.violations and self.drain is not None


class Driver:
    """Runs one soak on a :class:`FaultLab`: two clusters, a paced producer and random faults."""

    def __init__(self, lab: FaultLab, soak: Soak, tasks: int, duration: float, rng: random.Random) -> None:
        self.lab = lab
        self.soak = soak
        self.tasks = tasks
        self.duration = duration
        self.rng = rng
        self.killed: set[int] = set()
        self.clusters = [lab.cluster(), lab.cluster()]

    def run(self) -> None:
        """Produce and inject faults for ``duration`` seconds, then wait for the drain."""
        producer = threading.Thread(target=self.produce, name="producer", daemon=True)
        producer.start()
        deadline = time.monotonic() + self.duration
        last_fault = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(self.rng.uniform(0.3, 1.5))
            self.fault()
            last_fault = time.monotonic()
        producer.join(DRAIN_TIMEOUT)
        drain_deadline = time.monotonic() + DRAIN_TIMEOUT
        while self.lab.finished() < len(self.lab.task_ids) and time.monotonic() < drain_deadline:
            time.sleep(0.2)
        if self.lab.finished() == len(self.lab.task_ids):
            self.soak.drain = time.monotonic() - last_fault
        for cluster in self.clusters:
            try:
                code: int | None = cluster.stop()
            except subprocess.TimeoutExpired:
                code = None  # stop() killed it
            if code != 0:
                self.soak.notes.append(f"a cluster stopped with exit code {code}")

    def produce(self) -> None:
        """Enqueue the tasks in even batches over the duration; send a batch the broker refused again."""
        batches = max(1, int(self.duration * BATCHES_PER_SECOND))
        per_batch = -(-self.tasks // batches)
        mean = BUSY * 2 * WORKERS * self.duration / self.tasks  # seconds per task
        made = 0
        while made < self.tasks:
            count = min(per_batch, self.tasks - made)
            arguments = [(f"c{made + i}", self.rng.uniform(0.0, 2 * mean)) for i in range(count)]
            try:
                self.lab.enqueue_many(TASK, arguments)
                made += count
            except QFrameError:
                pass  # the server is down: nothing came back, so the batch is sent again
            time.sleep(1 / BATCHES_PER_SECOND)

    def fault(self) -> None:
        """One random fault: kill a worker (most often), a whole cluster, or restart the server."""
        faults: list[tuple[Callable[[], None], float]] = [(self.kill_worker, 6), (self.kill_cluster, 2)]
        if self.lab.target.server is not None:
            faults.append((self.restart_server, 2))
        [chosen] = self.rng.choices([f for f, _ in faults], weights=[w for _, w in faults])
        chosen()

    def kill_worker(self) -> None:
        """SIGKILL one live worker of a random cluster."""
        cluster = self.rng.choice(self.clusters)
        live = [pid for pid in cluster.worker_pids() if pid not in self.killed and alive(pid)]
        if live:
            victim = self.rng.choice(live)
            self.killed.add(victim)
            os.kill(victim, signal.SIGKILL)
            self.soak.worker_kills += 1

    def kill_cluster(self) -> None:
        """SIGKILL a whole cluster (main process, sentinel and children) and start a new one."""
        index = self.rng.randrange(len(self.clusters))
        self.clusters[index].kill_all()
        self.soak.cluster_kills += 1
        self.clusters[index] = self.start_cluster()

    def start_cluster(self) -> ClusterProcess:
        """A new cluster; a start during an outage of the server is tried again."""
        for _ in range(10):
            cluster = self.lab.cluster(wait=False)
            try:
                return cluster.wait_running(60)
            except AssertionError:
                cluster.kill_all()
                time.sleep(1.0)
        raise RuntimeError(f"no cluster could start on {self.soak.broker}")

    def restart_server(self) -> None:
        """SIGKILL the broker's server, leave it down for a moment, start it on the same data."""
        server = self.lab.target.server
        assert server is not None
        server.kill_hard()
        time.sleep(self.rng.uniform(0.2, 1.5))
        server.start()
        self.soak.restarts += 1


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def sqlite_target(directory: Path) -> FaultTarget:
    """The embedded SQLite broker and store in one file (no server to restart)."""
    return FaultTarget({"QFRAME_BROKER_URL": f"sqlite:///{directory}/chaos.db"})


def redis_target(directory: Path) -> FaultTarget:
    """A private ``redis-server`` (AOF, fsync always) for the Redis broker and store."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise LookupError("redis-server is not installed")
    server = RedisServer(binary, directory / "redis", lifetime=3600).start()
    return FaultTarget({"QFRAME_BROKER": "redis", "QFRAME_BROKER_URL": server.url}, server)


#: The brokers the soak knows how to run, by driver name.
TARGETS: dict[str, Callable[[Path], FaultTarget]] = {"sqlite": sqlite_target, "redis": redis_target}


def run_soak(
    broker: str,
    make_target: Callable[[Path], FaultTarget],
    directory: Path,
    tasks: int,
    duration: float,
    seed: int,
) -> Soak:
    """Soak one broker: two clusters on a target built in ``directory``, faults for ``duration`` s."""
    target = make_target(directory)
    soak = Soak(broker, server=target.server is not None)
    lab = FaultLab(target, directory / "lab", lifetime=duration + DRAIN_TIMEOUT + 300)
    # A short lease brings back what a killed cluster held; attempts are spent by kills, so
    # leave room for them (a task hit ten times would rightly end as failed).
    lab.configure(lease=lab.lease(3.0), max_attempts=10, workers=WORKERS)
    try:
        Driver(lab, soak, tasks, duration, random.Random(seed)).run()
        soak.verdict = lab.verdict()
    finally:
        lab.close()
        for number, cluster in enumerate(lab.clusters):
            (directory / f"cluster-{number}.log").write_text(cluster.log)
        if target.server is not None:
            target.server.stop()
    return soak


COLUMNS = (
    "broker", "tasks", "worker kills", "cluster kills", "server restarts", "lost",
    "duplicated final records", "false failures", "executed twice", "saved twice", "failed",
    "drain after last fault",
)  # fmt: skip


def rows(soaks: Sequence[Soak]) -> list[list[str]]:
    """One row of :data:`COLUMNS` per soak."""
    table = []
    for soak in soaks:
        v = soak.verdict
        assert v is not None, "a soak without a verdict raised before this"
        counts = [v.lost, v.duplicated, v.false_failures, v.executed_twice, v.saved_twice, v.failed]
        restarts = str(soak.restarts) if soak.server else "n/a (no server)"
        drain = f"{soak.drain:.1f} s" if soak.drain is not None else "did not drain"
        table.append(
            [soak.broker, str(v.tasks), str(soak.worker_kills), str(soak.cluster_kills), restarts]
            + [str(len(ids)) for ids in counts]
            + [drain]
        )
    return table


def rich_table(soaks: Sequence[Soak], title: str) -> Table:
    """The soak's results for the terminal."""
    grid = Table(title=title)
    for name in COLUMNS:
        grid.add_column(name, justify="left" if name == "broker" else "right")
    for row in rows(soaks):
        grid.add_row(*row)
    return grid


def markdown_table(soaks: Sequence[Soak]) -> str:
    """The soak's results as a Markdown table (for ``docs/reliability.md``)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(soaks)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: soak each broker, print the table, exit 1 if the invariant broke anywhere."""
    summary = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m qframe.testing.chaos", description=summary)
    add = parser.add_argument
    add("--broker", action="append", choices=sorted(TARGETS), help="repeat; default: every installed one")
    add("--tasks", type=int, default=5000, help="tasks per broker (default 5000)")
    add("--duration", type=float, default=45.0, help="seconds of faults per broker (default 45)")
    add("--seed", type=int, default=None, help="random seed (default: a new one, printed)")
    add("--keep", type=Path, default=None, help="keep ledgers and cluster logs in this directory")
    add("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 150))
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    brokers = args.broker or [name for name in TARGETS if name in available("broker")]
    console.print(f"seed {seed}; brokers {', '.join(brokers)}")
    soaks, missing = [], []
    with tempfile.TemporaryDirectory(prefix="qframe-chaos-") as temporary:
        scratch = args.keep or temporary
        for name in brokers:
            started = time.monotonic()
            try:
                soak = run_soak(name, TARGETS[name], Path(scratch) / name, args.tasks, args.duration, seed)
            except LookupError as exc:
                missing.append(f"{name}: {exc}")
                console.print(f"[yellow]skipped {name}: {exc}")
                continue
            soaks.append(soak)
            console.print(f"{name}: done in {time.monotonic() - started:.0f} s; {'; '.join(soak.notes)}")
    title = f"qframe chaos: {args.tasks} tasks, two clusters, {args.duration:g} s of faults, seed {seed}"
    console.print(rich_table(soaks, title))
    if args.markdown:
        print(markdown_table(soaks))
    for soak in soaks:
        if soak.verdict and soak.verdict.violations:
            console.print(f"[red]{soak.broker}: {soak.verdict.explain()}")
    under_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return 1 if not all(s.ok for s in soaks) or (missing and under_ci) else 0


if __name__ == "__main__":
    sys.exit(main())
