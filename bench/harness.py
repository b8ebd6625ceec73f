"""qframe side by side with its peers, in one run, against one ``redis-server``.

Examples::

    python bench/harness.py --tasks 5000 --reps 3 --systems qframe,huey,celery,djangoq,rq
    python bench/harness.py --mode scale --scale-workers 1,2,4
    python bench/harness.py --mode sqlite            # qframe's SQLite vs Huey's SqliteHuey
    python bench/harness.py --mode io                # 50 ms sleeps: qframe managers, peer threads
    python bench/harness.py --mode sqs               # moto: qframe-sqs, Celery SQS, Django Q2 SQS
    python bench/harness.py --mode mongo             # SecantusDB: qframe-mongo, Django Q2 mongo
    python bench/harness.py --mode orm               # PostgreSQL: qframe-django orm, Django Q2 orm
    python bench/harness.py --mode all               # every table above but scale, in one run

Each (system, repetition) runs in its own ``runner.py`` subprocess, which starts the
system's workers in their own process groups and always stops them. Repetitions go
round-robin over the systems; the table shows the median of each metric over the
repetitions and the ratio qframe / peer. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from adapters import ADAPTERS, BROKER_ADAPTERS, REDIS_DB  # noqa: E402
from adapters.base import RunSpec  # noqa: E402
from common import (  # noqa: E402
    RedisAddress,
    Table,
    fmt_num,
    fmt_ratio,
    kill_group,
    median,
    ratio,
    redis_server,
    redis_version,
    start_group,
    tail,
)
from common import flush_db as _flush_db  # noqa: E402
from runner import MARKER  # noqa: E402
from servers import ServerUnavailable, moto_server, postgres_server, secantus_server  # noqa: E402

DEFAULT_SYSTEMS = "qframe,huey,celery,djangoq,rq"
SQLITE_SYSTEMS = ("qframe", "huey")
IO_SYSTEMS = "qframe,qframe-threads,qframe-asyncio,celery-threads,dramatiq-threads"
#: The broker modes: the systems with an adapter for that broker, in table order.
BROKER_SYSTEMS: dict[str, tuple[str, ...]] = {
    broker: tuple(s for s, b in BROKER_ADAPTERS if b == broker) for broker in ("sqs", "mongo", "orm")
}
#: What ``--mode all`` runs, in order (scale is a sweep of its own, not a peer table).
ALL_MODES = ("compare", "sqlite", "io", "sqs", "mongo", "orm")
#: Tasks per throughput run when ``--tasks`` is not given: the slow servers get fewer.
MODE_TASKS = {
    "compare": 5000, "scale": 5000, "sqlite": 5000, "io": 500, "sqs": 300, "mongo": 500, "orm": 2000,
}  # fmt: skip
#: Backend of each mode's runs.
MODE_BACKEND = {"compare": "redis", "scale": "redis", "io": "redis", "sqlite": "sqlite"} | {
    b: b for b in BROKER_SYSTEMS
}
#: Where each broker mode's systems keep their results (a note under the table).
MODE_RESULTS = {
    "sqs": "results: qframe in its sqlite store, celery in its file-system backend, djangoq in the "
    "Django ORM on SQLite",
    "mongo": "results: qframe in its mongo store (same server), djangoq in the Django ORM on SQLite",
    "orm": "results: both in the same PostgreSQL database as their queue",
}
#: Title of each mode's table: what the systems share.
MODE_WHAT = {
    "compare": "Redis, same server",
    "io": "Redis, same server",
    "sqlite": "SQLite",
    "sqs": "SQS on one local moto_server",
    "mongo": "MongoDB wire on one SecantusDB",
    "orm": "Django ORM on one PostgreSQL",
}


@dataclass(frozen=True)
class Point:
    """One configuration measured for every system: backend, worker count, task count."""

    backend: str
    workers: int
    tasks: int


@dataclass
class Outcome:
    """The runs of one system at one point."""

    runs: list[dict[str, Any]] = field(default_factory=list)

    def ok(self) -> list[dict[str, Any]]:
        """The runs that finished without error."""
        return [r for r in self.runs if r.get("error") is None]

    def med(self, key: str) -> float:
        """Median of ``key`` over the successful runs (NaN when none has it)."""
        return median([r[key] for r in self.ok() if key in r])


def run_one(spec: RunSpec, redis: RedisAddress | None, verbose: bool = False) -> dict[str, Any]:
    """Flush the system's Redis database, run ``runner.py`` for ``spec``, return its result.

    The runner gets a hard wall-clock limit; past it, the runner's process group and every
    worker group it reported are killed. Worker groups are killed after every run anyway,
    in case the runner itself died before its own cleanup.
    """
    workdir = Path(spec.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    spec.pgid_file = str(workdir / "worker-pgids")
    if redis is not None and spec.backend == "redis":
        _flush_db(redis, REDIS_DB[spec.system])
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    log_path = workdir / "runner.log"
    started = time.monotonic()
    with open(workdir / "runner-stderr.log", "wb") as log:
        proc = start_group(
            [sys.executable, str(BENCH_DIR / "runner.py"), json.dumps(spec.to_json())],
            env=env,
            cwd=workdir,
            log=log,
            stdout=subprocess.PIPE,
        )
    try:
        try:
            stdout, _ = proc.communicate(timeout=spec.timeout + 45)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            stdout, _ = proc.communicate()
            return _failed(spec, f"hard timeout ({spec.timeout + 45:.0f} s): runner killed", started)
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
            proc.wait()
        for line in _read_lines(Path(spec.pgid_file)):
            kill_group(int(line))
    text = stdout.decode(errors="replace")
    log_path.write_text(text)
    for line in reversed(text.splitlines()):
        if line.startswith(MARKER):
            result: dict[str, Any] = json.loads(line[len(MARKER) :])
            result["wall_s"] = time.monotonic() - started
            if verbose and result.get("error"):
                print(result.get("traceback", ""), file=sys.stderr)
                for worker_log in result.get("logs", []):
                    print(f"--- {worker_log}\n{tail(Path(worker_log))}", file=sys.stderr)
            return result
    stderr_tail = tail(workdir / "runner-stderr.log")
    return _failed(spec, f"runner exited {proc.returncode} without a result:\n{stderr_tail}", started)


def _failed(spec: RunSpec, error: str, started: float) -> dict[str, Any]:
    return {
        "system": spec.system,
        "backend": spec.backend,
        "tasks": spec.tasks,
        "workers": spec.workers,
        "error": error,
        "wall_s": time.monotonic() - started,
    }


def _read_lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text().split() if line.strip()]
    except OSError:
        return []


def progress(rep: int, reps: int, point: Point, result: dict[str, Any]) -> None:
    """Print one line per finished run."""
    where = f"{point.backend} w={point.workers} n={point.tasks}"
    head = f"[rep {rep + 1}/{reps}] {result['system']:<8} {where}"
    if result.get("error"):
        first = str(result["error"]).splitlines()[0]
        print(f"{head}: FAILED after {result['wall_s']:.1f} s: {first}", flush=True)
        return
    lat = ""
    if "p50_ms" in result:
        lat = f"  p50 {result['p50_ms']:.1f} ms  p95 {result['p95_ms']:.1f} ms"
    if "drain_rate" in result:
        lat += f"  drained {result['drain_rate']:,.0f}/s ({result['drain_s']:.1f} s)"
    print(
        f"{head}: enqueue {result['enqueue_rate']:,.0f}/s  end-to-end {result['throughput']:,.0f}/s"
        f" ({result['e2e_s']:.1f} s){lat}  [{result['wall_s']:.1f} s]",
        flush=True,
    )


def measure(
    systems: Sequence[str],
    points: Sequence[Point],
    reps: int,
    base: RunSpec,
    redis: RedisAddress | None,
    workroot: Path,
    verbose: bool = False,
    server_url: str | None = None,
) -> dict[tuple[Point, str], Outcome]:
    """Run every system at every point ``reps`` times, round-robin, and collect the results.

    Within a repetition the systems' order rotates, so slow drift of the machine (other
    load, thermal state) does not always fall on the same system.
    """
    outcomes: dict[tuple[Point, str], Outcome] = {(p, s): Outcome() for p in points for s in systems}
    for rep in range(reps):
        order = list(systems[rep % len(systems) :]) + list(systems[: rep % len(systems)])
        for point in points:
            for system in order:
                spec = RunSpec(
                    **{
                        **base.to_json(),
                        "system": system,
                        "backend": point.backend,
                        "workers": point.workers,
                        "tasks": point.tasks,
                    }
                )
                if point.backend == "redis":
                    assert redis is not None
                    spec.redis_url = redis.url(REDIS_DB[system])
                spec.server_url = server_url
                spec.workdir = str(
                    workroot / f"{system}-{point.backend}-w{point.workers}-n{point.tasks}-r{rep}"
                )
                result = run_one(spec, redis, verbose)
                if redis is not None and point.backend == "redis":  # leave the server clean
                    with contextlib.suppress(OSError, RuntimeError):
                        _flush_db(redis, REDIS_DB[system])
                outcomes[(point, system)].runs.append(result)
                progress(rep, reps, point, result)
    return outcomes


def _versions(outcomes: dict[tuple[Point, str], Outcome]) -> dict[str, str]:
    found: dict[str, str] = {}
    for (_, system), outcome in outcomes.items():
        for run in outcome.runs:
            if run.get("version"):
                found.setdefault(system, run["version"])
    return found


def _errors(outcomes: dict[tuple[Point, str], Outcome]) -> list[str]:
    notes = []
    for (point, system), outcome in outcomes.items():
        for i, run in enumerate(outcome.runs):
            if run.get("error"):
                first = str(run["error"]).strip().splitlines()
                where = f" (logs: {Path(run['logs'][0]).parent})" if run.get("logs") else ""
                last = first[-1] if first else ""
                notes.append(f"  {system} {point.backend} w={point.workers} run {i + 1}: {last}{where}")
    return notes


def compare_table(
    title: str,
    systems: Sequence[str],
    point: Point,
    outcomes: dict[tuple[Point, str], Outcome],
    reps: int,
) -> Table:
    """Medians per system with a qframe/peer ratio next to each metric."""
    table = Table(
        title,
        [
            "system",
            "enqueue/s",
            "qframe/x",
            "end-to-end/s",
            "qframe/x",
            "drained/s",
            "qframe/x",
            "p50 ms",
            "qframe/x",
            "p95 ms",
            "qframe/x",
            "runs ok",
        ],
    )
    q = outcomes.get((point, "qframe"))
    for system in systems:
        o = outcomes[(point, system)]
        cells: list[str] = [system]
        metrics = (("enqueue_rate", 0), ("throughput", 0), ("drain_rate", 0), ("p50_ms", 1), ("p95_ms", 1))
        for key, digits in metrics:
            value = o.med(key)
            cells.append(fmt_num(value, digits))
            cells.append("" if system == "qframe" else fmt_ratio(ratio(q.med(key), value) if q else math.nan))
        cells.append(f"{len(o.ok())}/{len(o.runs)}")
        table.add(*cells)
    return table


def scale_table(
    systems: Sequence[str], points: Sequence[Point], outcomes: dict[tuple[Point, str], Outcome]
) -> Table:
    """Enqueue rate and end-to-end throughput per system and point, with qframe/peer ratios."""
    table = Table(
        "Scale: medians per worker count and task count (ratio = qframe / system)",
        [
            "system",
            "workers",
            "tasks",
            "enqueue/s",
            "qframe/x",
            "end-to-end/s",
            "qframe/x",
            "runs ok",
        ],
    )
    for point in points:
        q = outcomes.get((point, "qframe"))
        for system in systems:
            o = outcomes[(point, system)]
            cells = [system, str(point.workers), f"{point.tasks:,}"]
            for key in ("enqueue_rate", "throughput"):
                value = o.med(key)
                cells.append(fmt_num(value))
                cells.append(
                    "" if system == "qframe" else fmt_ratio(ratio(q.med(key), value) if q else math.nan)
                )
            cells.append(f"{len(o.ok())}/{len(o.runs)}")
            table.add(*cells)
    return table


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mode",
        choices=("compare", "scale", "sqlite", "io", "sqs", "mongo", "orm", "all"),
        default="compare",
        help="compare (default): the full table on Redis; scale: throughput over "
        "worker and task counts; sqlite: qframe's SQLite vs Huey's SqliteHuey; io: an I/O-bound "
        "task (50 ms sleep) under qframe's process managers and the peers' thread pools; "
        "sqs / mongo / orm: each broker against the peers that support it, on a server started "
        "here (moto_server, SecantusDB, PostgreSQL); all: " + ", ".join(ALL_MODES) + ", one table each",
    )
    parser.add_argument(
        "--systems",
        default=None,
        help=f"comma-separated, from {','.join(ADAPTERS)} "
        f"(default {DEFAULT_SYSTEMS}; sqlite mode: qframe,huey; io mode: {IO_SYSTEMS}; "
        + "; ".join(f"{m} mode: {','.join(s)}" for m, s in BROKER_SYSTEMS.items())
        + "; not with --mode all)",
    )
    parser.add_argument(
        "--tasks",
        type=int,
        default=None,
        help="tasks per throughput run (default per mode: "
        + ", ".join(f"{m} {n:,}" for m, n in MODE_TASKS.items())
        + ")",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions, round-robin (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per system (default 2)")
    parser.add_argument(
        "--latency-samples",
        type=int,
        default=50,
        help="single-task latency samples per run, after 3 warm-up ones (default 50)",
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help="use this server instead of starting one; the harness FLUSHes "
        f"databases {min(REDIS_DB.values())}-{max(REDIS_DB.values())} of it",
    )
    parser.add_argument(
        "--no-drain",
        dest="drain",
        action="store_false",
        help="skip the drain phase (N pre-enqueued tasks timed from the workers' launch)",
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=240.0,
        help="hard limit in seconds for one run of one system (default 240)",
    )
    parser.add_argument(
        "--io-sleep", type=float, default=0.05, help="io mode: seconds each task sleeps (default 0.05)"
    )
    parser.add_argument("--scale-workers", default="1,2,4", help="scale mode: worker counts (default 1,2,4)")
    parser.add_argument("--scale-tasks", default=None, help="scale mode: task counts (default --tasks)")
    parser.add_argument(
        "--huey-notify-result",
        action="store_true",
        help="RedisHuey(notify_result=True): BLPOP result notification instead "
        "of Huey's default polling in Result.get(blocking=True)",
    )
    parser.add_argument(
        "--huey-sqlite-poll",
        type=float,
        default=0.05,
        help="sqlite mode: Huey consumer's fixed polling delay (default 0.05 s, qframe's default poll)",
    )
    parser.add_argument(
        "--json", dest="json_path", default=None, help="also write every run's raw result here"
    )
    parser.add_argument(
        "--markdown", dest="markdown_path", default=None, help="also write every table as Markdown here"
    )
    parser.add_argument("--plain", action="store_true", help="plain-text table even if rich is installed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, SQLite files)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print tracebacks and log tails of failures"
    )
    args = parser.parse_args(argv)
    if args.mode == "all" and args.systems:
        parser.error("--systems picks the systems of one mode; --mode all runs each mode's default")
    args.systems = [s.strip() for s in (args.systems or "").split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in ADAPTERS]
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; known: {', '.join(ADAPTERS)}")
    allowed = {"sqlite": SQLITE_SYSTEMS, **BROKER_SYSTEMS}.get(args.mode)
    bad = [s for s in args.systems if allowed is not None and s not in allowed]
    if bad:
        parser.error(f"{args.mode} mode runs only {', '.join(allowed or ())}, not {', '.join(bad)}")
    if (args.tasks is not None and args.tasks < 1) or args.reps < 1 or args.workers < 1:
        parser.error("--tasks, --reps and --workers must be at least 1")
    return args


def mode_systems(args: argparse.Namespace, mode: str) -> list[str]:
    """The systems ``mode`` measures: ``--systems``, else the mode's default set."""
    if args.systems:
        return list(args.systems)
    if mode in BROKER_SYSTEMS:
        return list(BROKER_SYSTEMS[mode])
    default = {"sqlite": ",".join(SQLITE_SYSTEMS), "io": IO_SYSTEMS}.get(mode, DEFAULT_SYSTEMS)
    return default.split(",")


@dataclass
class Servers:
    """The server(s) one mode's runs share, and a line that says which."""

    redis: RedisAddress | None = None
    url: str | None = None
    label: str = "no server"


@contextlib.contextmanager
def servers_for(args: argparse.Namespace, mode: str) -> Iterator[Servers]:
    """Start what ``mode`` needs (Redis, moto_server, SecantusDB or PostgreSQL) for the block."""
    backend = MODE_BACKEND[mode]
    if backend == "sqlite":
        yield Servers()
    elif backend == "redis" and args.redis_url:
        address = RedisAddress.parse(args.redis_url)
        yield Servers(redis=address, label=f"redis-server {redis_version(address)} at {address.port}")
    elif backend == "redis":
        with redis_server() as address:
            yield Servers(redis=address, label=f"redis-server {redis_version(address)} at {address.port}")
    else:
        starter = {"sqs": moto_server, "mongo": secantus_server, "orm": postgres_server}[backend]
        with starter() as url:
            yield Servers(url=url, label=f"{_server_name(backend)} at {url}")


def _server_name(backend: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    package = {"sqs": "moto", "mongo": "secantusdb", "orm": None}[backend]
    if package is None:
        from servers import postgres_bin

        binaries = postgres_bin()
        return f"PostgreSQL {binaries.parent.name if binaries else '?'}"
    try:
        return f"{'moto_server' if backend == 'sqs' else 'SecantusDB'} {version(package)}"
    except PackageNotFoundError:
        return package


def run_mode(args: argparse.Namespace, mode: str) -> tuple[Table, list[dict[str, Any]], bool]:
    """Measure one mode's systems; return its table, every run's raw result and whether all succeeded."""
    systems = mode_systems(args, mode)
    backend = MODE_BACKEND[mode]
    tasks_per_run = args.tasks or MODE_TASKS[mode]
    if mode == "scale":
        tasks = _ints(args.scale_tasks) if args.scale_tasks else [tasks_per_run]
        points = [Point(backend, w, n) for w in _ints(args.scale_workers) for n in tasks]
        samples = 0
    else:
        points = [Point(backend, args.workers, tasks_per_run)]
        samples = args.latency_samples
    base = RunSpec(
        system="",
        latency_samples=samples,
        timeout=args.run_timeout,
        drain=args.drain and mode != "scale",
        options={
            "huey_notify_result": args.huey_notify_result,
            "huey_sqlite_poll": args.huey_sqlite_poll,
            "task": "nap" if mode == "io" else "inc",
        },
    )
    workroot = Path(tempfile.mkdtemp(prefix=f"qframe-bench-{mode}-"))
    started = time.monotonic()
    keep = args.keep
    try:
        with servers_for(args, mode) as servers:
            print(
                f"qframe bench: mode={mode} systems={','.join(systems)} reps={args.reps} "
                f"({servers.label}; Python {platform.python_version()}; {os.cpu_count()} CPUs)",
                flush=True,
            )
            outcomes = measure(
                systems, points, args.reps, base, servers.redis, workroot, args.verbose, servers.url
            )
        errors = _errors(outcomes)
        keep = keep or bool(errors)  # the failed runs' logs are worth a look
    finally:
        if not keep:
            shutil.rmtree(workroot, ignore_errors=True)
    elapsed = time.monotonic() - started
    versions = _versions(outcomes)
    if mode == "scale":
        table = scale_table(systems, points, outcomes)
    else:
        nap = f"nap(x): sleep {args.io_sleep * 1000:g} ms, x + 1 (qframe = prefork)"
        task = nap if mode == "io" else "inc(x) -> x + 1"
        table = compare_table(
            f"{MODE_WHAT[mode]}: {task}, {tasks_per_run:,} tasks, {args.workers} workers, "
            f"median of {args.reps} reps (ratio = qframe / system)",
            systems,
            points[0],
            outcomes,
            args.reps,
        )
    table.notes.append(f"server: {servers.label}")
    if mode in MODE_RESULTS:
        table.notes.append(MODE_RESULTS[mode])
    table.notes.append("versions: " + "; ".join(f"{s} {v}" for s, v in versions.items()))
    if samples:
        table.notes.append(
            f"latency: {samples} single tasks per run on an idle cluster, system's own wait call"
        )
    table.notes.append(
        "rates: higher is better (ratio > 1 = qframe faster)"
        + ("; latency: lower is better (ratio < 1 = qframe faster)" if samples else "")
    )
    if errors:
        table.notes.append("failed runs:")
        table.notes.extend(errors)
    table.notes.append(f"total time {elapsed:.0f} s" + (f"; work dir kept: {workroot}" if keep else ""))
    raw = [
        {**run, "mode": mode, "rep": i} for outcome in outcomes.values() for i, run in enumerate(outcome.runs)
    ]
    return table, raw, not errors


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark the command line asks for; 0 when every run succeeded."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every ``finally`` (workers, servers) runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    os.environ["BENCH_NAP"] = str(args.io_sleep)  # the io tasks read it in every worker
    modes = ALL_MODES if args.mode == "all" else (args.mode,)
    tables: list[Table] = []
    raw: list[dict[str, Any]] = []
    ok = True
    started = time.monotonic()
    for mode in modes:
        try:
            table, runs, mode_ok = run_mode(args, mode)
        except ServerUnavailable as exc:  # a server that cannot start fails its mode, not the others
            if len(modes) == 1:
                raise SystemExit(f"mode {mode} not measured: {exc}") from None
            print(f"mode {mode} not measured: {exc}", file=sys.stderr, flush=True)
            table = Table(f"{MODE_WHAT.get(mode, mode)}: not measured", ["system"])
            table.notes.append(f"not measured: {exc}")
            runs, mode_ok = [], False
        tables.append(table)
        raw.extend(runs)
        ok = ok and mode_ok
        if len(modes) > 1:  # each table as soon as its mode is done, all of them again at the end
            print()
            table.print(force_plain=args.plain)
    print()
    for table in tables:
        table.print(force_plain=args.plain)
        print()
    if len(modes) > 1:
        print(f"all modes: {time.monotonic() - started:.0f} s")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(raw, indent=1))
    if args.markdown_path:
        Path(args.markdown_path).write_text("\n".join(table.markdown() for table in tables))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
