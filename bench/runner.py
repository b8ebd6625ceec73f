"""One measured run of one system, in its own process: ``python runner.py '<spec json>'``.

The harness starts this script once per (system, repetition) so every system's client
library is imported in a fresh interpreter. It prints one line ``BENCH-RESULT <json>``.

Phases: untimed ``prepare``; start the workers (not waiting for them); enqueue N tasks,
one call each (enqueue rate); wait until every result is stored (end-to-end throughput,
from the first enqueue, so worker start-up is included); then single tasks on the now
idle cluster, each timed from enqueue to the system's own wait call returning (latency).
Last, the drain: stop the workers, enqueue N more with nothing consuming, start the
workers and time from their launch until every result is stored (the drain rate: the
producer is out of the way, start-up is in). Workers are always stopped in ``finally``;
an alarm bounds the whole run.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR / "tasks")]

from adapters import load  # noqa: E402
from adapters.base import RunSpec  # noqa: E402
from common import percentile  # noqa: E402

MARKER = "BENCH-RESULT "


class RunTimeout(Exception):
    """The run's hard time limit passed."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise RunTimeout("hard per-run timeout reached")


def run(spec: RunSpec) -> dict[str, Any]:
    """Execute the phases for ``spec`` and return the measurements."""
    out: dict[str, Any] = {
        "system": spec.system,
        "backend": spec.backend,
        "tasks": spec.tasks,
        "workers": spec.workers,
        "error": None,
    }
    adapter = load(spec)
    os.environ.update(adapter.environment())
    deadline = time.monotonic() + spec.timeout * 0.9  # before the alarm: a clearer error
    try:
        adapter.prepare()
        out["version"] = adapter.version()
        adapter.start_workers()
        t0 = time.perf_counter()
        handles = adapter.enqueue_all(spec.tasks)
        t1 = time.perf_counter()
        adapter.wait_all(handles, deadline)
        t2 = time.perf_counter()
        out.update(
            enqueue_s=t1 - t0,
            enqueue_rate=spec.tasks / (t1 - t0),
            e2e_s=t2 - t0,
            throughput=spec.tasks / (t2 - t0),
        )
        if spec.latency_samples > 0:
            lat = adapter.latency(spec.latency_samples, spec.latency_warmup, spec.latency_timeout)
            ms = [v * 1000 for v in lat]
            out.update(latencies_ms=ms, p50_ms=percentile(ms, 50), p95_ms=percentile(ms, 95))
        if spec.drain:
            adapter.stop_workers()
            handles = adapter.enqueue_all(spec.tasks)
            t3 = time.perf_counter()
            adapter.start_workers()
            adapter.wait_all(handles, deadline)
            t4 = time.perf_counter()
            out.update(drain_s=t4 - t3, drain_rate=spec.tasks / (t4 - t3))
    except BaseException as exc:
        out["error"] = f"{type(exc).__name__}: {exc}".strip()
        out["traceback"] = traceback.format_exc(limit=8)
    finally:
        signal.alarm(0)
        try:
            adapter.stop_workers()
            out["stop_codes"] = adapter.stop_codes
            adapter.close()
        except Exception as exc:  # cleanup problems are reported, never hide a result
            out["cleanup_error"] = f"{type(exc).__name__}: {exc}"
        out["logs"] = [str(p) for p in adapter.logs]
    return out


def main() -> None:
    """Run the spec given as JSON in ``argv[1]`` and print the result line."""
    spec = RunSpec(**json.loads(sys.argv[1]))
    Path(spec.workdir).mkdir(parents=True, exist_ok=True)
    os.chdir(spec.workdir)
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGTERM, _alarm)
    signal.alarm(max(1, int(spec.timeout)))
    result = run(spec)
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    # Some clients leave non-daemon threads behind (result listeners); do not wait for them.
    os._exit(0 if result["error"] is None else 1)


if __name__ == "__main__":
    main()
