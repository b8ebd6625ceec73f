"""qframe side by side with its peers, in one run, against one ``redis-server``.

Examples::

    python bench/harness.py --tasks 5000 --reps 3 --systems qframe,huey,celery,djangoq,rq
    python bench/harness.py --mode scale --scale-workers 1,2,4
    python bench/harness.py --mode sqlite            # qframe's SQLite vs Huey's SqliteHuey
    python bench/harness.py --mode io                # 50 ms sleeps: qframe managers, peer threads

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

from adapters import ADAPTERS, REDIS_DB  # noqa: E402
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

DEFAULT_SYSTEMS = "qframe,huey,celery,djangoq,rq"
SQLITE_SYSTEMS = ("qframe", "huey")
IO_SYSTEMS = "qframe,qframe-threads,qframe-asyncio,celery-threads,dramatiq-threads"


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
        for key, digits in (("enqueue_rate", 0), ("throughput", 0), ("p50_ms", 1), ("p95_ms", 1)):
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
        choices=("compare", "scale", "sqlite", "io"),
        default="compare",
        help="compare (default): the full table on Redis; scale: throughput over "
        "worker and task counts; sqlite: qframe's SQLite vs Huey's SqliteHuey; io: an I/O-bound "
        "task (50 ms sleep) under qframe's process managers and the peers' thread pools",
    )
    parser.add_argument(
        "--systems",
        default=None,
        help=f"comma-separated, from {','.join(ADAPTERS)} "
        f"(default {DEFAULT_SYSTEMS}; sqlite mode: qframe,huey; io mode: {IO_SYSTEMS})",
    )
    parser.add_argument("--tasks", type=int, default=5000, help="tasks per throughput run (default 5000)")
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
    parser.add_argument("--plain", action="store_true", help="plain-text table even if rich is installed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, SQLite files)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print tracebacks and log tails of failures"
    )
    args = parser.parse_args(argv)
    default = {"sqlite": ",".join(SQLITE_SYSTEMS), "io": IO_SYSTEMS}.get(args.mode, DEFAULT_SYSTEMS)
    args.systems = [s.strip() for s in (args.systems or default).split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in ADAPTERS]
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; known: {', '.join(ADAPTERS)}")
    if args.mode == "sqlite":
        bad = [s for s in args.systems if s not in SQLITE_SYSTEMS]
        if bad:
            parser.error(f"sqlite mode runs only {', '.join(SQLITE_SYSTEMS)}, not {', '.join(bad)}")
    if args.tasks < 1 or args.reps < 1 or args.workers < 1:
        parser.error("--tasks, --reps and --workers must be at least 1")
    return args


@contextlib.contextmanager
def _redis_for(args: argparse.Namespace) -> Iterator[RedisAddress | None]:
    if args.mode == "sqlite":
        yield None
    elif args.redis_url:
        yield RedisAddress.parse(args.redis_url)
    else:
        with redis_server() as address:
            yield address


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark the command line asks for; 0 when every run succeeded."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every ``finally`` (workers, redis-server) runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    backend = "sqlite" if args.mode == "sqlite" else "redis"
    os.environ["BENCH_NAP"] = str(args.io_sleep)  # the io tasks read it in every worker
    if args.mode == "scale":
        tasks = _ints(args.scale_tasks) if args.scale_tasks else [args.tasks]
        points = [Point(backend, w, n) for w in _ints(args.scale_workers) for n in tasks]
        samples = 0
    else:
        points = [Point(backend, args.workers, args.tasks)]
        samples = args.latency_samples
    base = RunSpec(
        system="",
        latency_samples=samples,
        timeout=args.run_timeout,
        options={
            "huey_notify_result": args.huey_notify_result,
            "huey_sqlite_poll": args.huey_sqlite_poll,
            "task": "nap" if args.mode == "io" else "inc",
        },
    )
    workroot = Path(tempfile.mkdtemp(prefix="qframe-bench-"))
    started = time.monotonic()
    keep = args.keep
    try:
        with _redis_for(args) as redis:
            server = (
                f"redis-server {redis_version(redis)} at {redis.host}:{redis.port}" if redis else "no server"
            )
            print(
                f"qframe bench: mode={args.mode} systems={','.join(args.systems)} reps={args.reps} "
                f"({server}; Python {platform.python_version()}; {os.cpu_count()} CPUs)",
                flush=True,
            )
            outcomes = measure(args.systems, points, args.reps, base, redis, workroot, args.verbose)
        errors = _errors(outcomes)
        keep = keep or bool(errors)  # the failed runs' logs are worth a look
    finally:
        if not keep:
            shutil.rmtree(workroot, ignore_errors=True)
    elapsed = time.monotonic() - started
    versions = _versions(outcomes)
    if args.mode == "scale":
        table = scale_table(args.systems, points, outcomes)
    else:
        what = "Redis, same server" if backend == "redis" else "SQLite"
        nap = f"nap(x): sleep {args.io_sleep * 1000:g} ms, x + 1 (qframe = prefork)"
        task = nap if args.mode == "io" else "inc(x) -> x + 1"
        table = compare_table(
            f"{what}: {task}, {args.tasks:,} tasks, {args.workers} workers, "
            f"median of {args.reps} reps (ratio = qframe / system)",
            args.systems,
            points[0],
            outcomes,
            args.reps,
        )
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
    print()
    table.print(force_plain=args.plain)
    if args.json_path:
        raw = [{**run, "rep": i} for outcome in outcomes.values() for i, run in enumerate(outcome.runs)]
        Path(args.json_path).write_text(json.dumps(raw, indent=1))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
