"""The interface every benchmarked system implements, and the run spec it receives."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from common import TASKS_DIR, start_group, stop_groups, tail

#: What ``Adapter.check`` returns while a task has no result yet.
PENDING: Any = type("Pending", (), {"__repr__": lambda self: "PENDING"})()


class WorkerDied(RuntimeError):
    """A worker process of the system under test exited during the run."""


class WrongResult(RuntimeError):
    """A task's result is not what ``inc(x)`` returns."""


@dataclass
class RunSpec:
    """Everything one measured run needs; passed from the harness to ``runner.py`` as JSON."""

    system: str
    backend: str = "redis"  # "redis", "sqlite", "sqs", "mongo" or "orm"
    tasks: int = 5000
    workers: int = 2
    latency_samples: int = 50
    latency_warmup: int = 3
    latency_timeout: float = 10.0
    redis_url: str | None = None  # full URL including the db number
    server_url: str | None = None  # the broker modes' server: moto, SecantusDB, PostgreSQL
    workdir: str = "/tmp"
    pgid_file: str | None = None
    timeout: float = 240.0
    drain: bool = True  # also time N pre-enqueued tasks drained from the workers' launch
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON-serializable dict."""
        return asdict(self)


class Adapter(ABC):
    """One task queue under test: starts its workers, enqueues, waits, stops.

    Subclasses implement the system-specific primitives (``worker_commands``,
    ``enqueue``, ``check``, ``wait``); the measured loops built on them
    (``enqueue_all``, ``wait_all``, ``latency``) are shared so every system is timed
    the same way.
    """

    #: Name used on the command line and in the table.
    name: ClassVar[str]
    #: Brokers the adapter can run on: ``redis``, ``sqlite``, ``sqs``, ``mongo``, ``orm``.
    backends: ClassVar[tuple[str, ...]] = ("redis",)
    #: Seconds between two checks of the oldest unfinished task in ``wait_all``.
    poll_interval: ClassVar[float] = 0.005

    def __init__(self, spec: RunSpec) -> None:
        """Keep the spec; nothing is started yet."""
        if spec.backend not in self.backends:
            raise ValueError(f"{self.name} has no {spec.backend} backend (has {self.backends})")
        self.spec = spec
        self.workdir = Path(spec.workdir)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.stop_codes: list[int | None] = []

    # ------------------------------------------------------------------ to implement

    def environment(self) -> dict[str, str]:
        """Environment variables both the workers and the producer need (before imports)."""
        return {}

    def prepare(self) -> None:
        """Untimed set-up before the workers start (imports, migrations)."""
        return None

    @abstractmethod
    def worker_commands(self) -> list[list[str]]:
        """The argv of each worker process to start, for ``spec.workers`` workers in all."""

    @abstractmethod
    def enqueue(self, x: int) -> Any:
        """Enqueue ``inc(x)`` with one call; return a handle for ``check``/``wait``."""

    @abstractmethod
    def check(self, handle: Any) -> Any:
        """The task's result if it is stored, else ``PENDING``; never blocks."""

    @abstractmethod
    def wait(self, handle: Any, timeout: float) -> Any:
        """Block on the system's own wait call for the task's result."""

    def version(self) -> str:
        """The version of the system under test."""
        return "?"

    def close(self) -> None:
        """Release producer-side connections."""
        return None

    # ------------------------------------------------------------------ shared

    def worker_env(self) -> dict[str, str]:
        """The workers' environment: ours plus the task folder on ``PYTHONPATH``."""
        env = dict(os.environ)
        env.update(self.environment())
        paths = [str(TASKS_DIR), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start_workers(self) -> None:
        """Start every worker command in its own process group, logging to the workdir.

        Does not wait for the workers to be ready: start-up is part of the measured
        end-to-end time.
        """
        env = self.worker_env()
        for argv in self.worker_commands():
            log_path = self.workdir / f"worker-{len(self.logs)}.log"
            self.logs.append(log_path)
            with open(log_path, "wb") as log:
                proc = start_group(argv, env=env, cwd=TASKS_DIR, log=log)
            self.procs.append(proc)
            if self.spec.pgid_file:
                with open(self.spec.pgid_file, "a") as f:
                    f.write(f"{proc.pid}\n")

    def check_alive(self) -> None:
        """Raise ``WorkerDied`` (with the log's tail) if a worker process has exited."""
        for proc, log in zip(self.procs, self.logs[len(self.logs) - len(self.procs) :], strict=True):
            code = proc.poll()
            if code is not None:
                raise WorkerDied(f"worker {proc.args!r} exited with {code}:\n{tail(log)}")

    def stop_workers(self) -> None:
        """SIGTERM each worker, SIGKILL its whole group after a grace period (workers can start again)."""
        self.stop_codes += stop_groups(self.procs, grace=float(self.spec.options.get("grace", 15)))
        self.procs.clear()

    def enqueue_all(self, n: int) -> list[Any]:
        """Enqueue ``inc(0) .. inc(n-1)``, one call per task."""
        enqueue = self.enqueue
        return [enqueue(i) for i in range(n)]

    def wait_all(self, handles: list[Any], deadline: float) -> None:
        """Return once every handle has its result, checking each value.

        Walks the handles in enqueue order and checks the oldest unfinished one, sleeping
        ``poll_interval`` while it is pending: about one round trip per task, so the
        producer takes little CPU from the workers, and the end is seen within a few ms.
        """
        check, interval = self.check, self.poll_interval
        next_alive_check = time.monotonic() + 0.5
        for x, handle in enumerate(handles):
            while True:
                value = check(handle)
                if value is not PENDING:
                    break
                now = time.monotonic()
                if now > deadline:
                    raise TimeoutError(f"{self.name}: result {x} of {len(handles)} not stored in time")
                if now > next_alive_check:
                    self.check_alive()
                    next_alive_check = now + 0.5
                time.sleep(interval)
            if value != x + 1:
                raise WrongResult(f"{self.name}: inc({x}) returned {value!r}")

    def latency(self, samples: int, warmup: int, timeout: float) -> list[float]:
        """Seconds from enqueue to result of single tasks on the idle cluster.

        Each sample enqueues one task and blocks on ``wait``; a random 0-20 ms pause
        before each keeps samples from locking onto a polling loop's phase.
        """
        out: list[float] = []
        rng = random.Random(1234)
        for i in range(warmup + samples):
            time.sleep(rng.uniform(0, 0.02))
            x = 1_000_000 + i
            start = time.perf_counter()
            value = self.wait(self.enqueue(x), timeout)
            elapsed = time.perf_counter() - start
            if value != x + 1:
                self.check_alive()
                raise WrongResult(f"{self.name}: inc({x}) returned {value!r} (waited {elapsed:.2f} s)")
            if i >= warmup:
                out.append(elapsed)
        return out


def python_module_cmd(module: str, *args: str) -> list[str]:
    """``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def python_call_cmd(target: str, *args: str) -> list[str]:
    """Run ``target`` (``pkg.mod:func``) as a console script would, with ``args``."""
    module, func = target.split(":")
    prog = module.split(".")[0]
    code = f"import sys; from {module} import {func} as m; sys.argv[0] = {prog!r}; sys.exit(m())"
    return [sys.executable, "-c", code, *args]


def timed(func: Callable[[], Any]) -> tuple[Any, float]:
    """Call ``func`` and return its value and the seconds it took."""
    start = time.perf_counter()
    value = func()
    return value, time.perf_counter() - start
