"""qframe on its embedded SQLite default: enqueue rate, end-to-end throughput, latency.

Needs only qframe installed (no peers, no Redis)::

    python bench/throughput.py --tasks 5000 --workers 2 --reps 3

Each repetition starts ``qframe cluster --workers N`` on a fresh SQLite file, enqueues
N no-op tasks (``inc(x) -> x + 1``) one call each, waits for every result (start-up
included), then times single tasks on the idle cluster from enqueue until
``qframe.result(task_id, wait=...)`` returns. The harness's ``--mode sqlite`` runs the
same measurement next to Huey's SqliteHuey.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from adapters.base import RunSpec  # noqa: E402
from common import Table, fmt_num  # noqa: E402
from harness import Point, measure  # noqa: E402


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=5000, help="tasks per run (default 5000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument(
        "--latency-samples", type=int, default=50, help="single-task samples per run (default 50)"
    )
    parser.add_argument(
        "--run-timeout", type=float, default=240.0, help="hard limit per run, s (default 240)"
    )
    parser.add_argument("--json", dest="json_path", default=None, help="write raw results here")
    parser.add_argument("--plain", action="store_true", help="plain-text table")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="print failure details")
    args = parser.parse_args(argv)
    if min(args.tasks, args.workers, args.reps) < 1:
        parser.error("--tasks, --workers and --reps must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the SQLite benchmark and print its table; 0 when every run succeeded."""
    args = parse_args(argv)
    point = Point("sqlite", args.workers, args.tasks)
    base = RunSpec(system="qframe", latency_samples=args.latency_samples, timeout=args.run_timeout)
    workroot = Path(tempfile.mkdtemp(prefix="qframe-throughput-"))
    started = time.monotonic()
    keep = args.keep
    try:
        print(
            f"qframe SQLite benchmark: {args.tasks:,} tasks, {args.workers} workers, {args.reps} reps",
            flush=True,
        )
        outcome = measure(["qframe"], [point], args.reps, base, None, workroot, args.verbose)[
            (point, "qframe")
        ]
        failed = [r for r in outcome.runs if r.get("error")]
        keep = keep or bool(failed)
    finally:
        if not keep:
            shutil.rmtree(workroot, ignore_errors=True)
    version = next((r["version"] for r in outcome.runs if r.get("version")), "?")
    table = Table(
        f"qframe {version} on SQLite: inc(x) -> x + 1, {args.tasks:,} tasks, {args.workers} workers",
        ["metric", "median", *[f"rep {i + 1}" for i in range(len(outcome.runs))]],
    )
    for key, label, digits in (
        ("enqueue_rate", "enqueue (tasks/s)", 0),
        ("throughput", "end-to-end (tasks/s)", 0),
        ("p50_ms", "latency p50 (ms)", 1),
        ("p95_ms", "latency p95 (ms)", 1),
    ):
        per_rep = [fmt_num(r.get(key, float("nan")), digits) for r in outcome.runs]
        table.add(label, fmt_num(outcome.med(key), digits), *per_rep)
    table.notes.append(
        "end-to-end: first enqueue to last result, cluster start-up included; latency: "
        f"{args.latency_samples} single tasks per run on the idle cluster"
    )
    for i, run in enumerate(outcome.runs):
        if run.get("error"):
            table.notes.append(f"rep {i + 1} failed: {str(run['error']).strip().splitlines()[-1]}")
    table.notes.append(
        f"total time {time.monotonic() - started:.0f} s" + (f"; work dir: {workroot}" if keep else "")
    )
    print()
    table.print(force_plain=args.plain)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(outcome.runs, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
