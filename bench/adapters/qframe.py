"""qframe: ``qframe cluster --workers N`` on Redis (qframe-redis) or its embedded SQLite."""

from __future__ import annotations

import shutil
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from adapters.base import PENDING, Adapter, python_call_cmd

QUEUE = "bench"


class QframeAdapter(Adapter):
    """One ``qframe cluster``; waits with ``qframe.result(task_id, wait=seconds)``."""

    name = "qframe"
    backends = ("redis", "sqlite")

    def queue(self) -> str:
        """The cluster's name, which is its queue's."""
        return QUEUE

    def environment(self) -> dict[str, str]:
        """``QFRAME_*`` settings shared by the cluster and the producer."""
        env = {"QFRAME_NAME": self.queue(), "QFRAME_WORKERS": str(self.spec.workers)}
        if self.spec.backend == "sqlite":
            env["QFRAME_BROKER"] = "sqlite"
            env["QFRAME_BROKER_URL"] = f"sqlite:///{self.workdir / 'qframe.db'}"
        else:
            env["QFRAME_BROKER"] = "redis"
            env["QFRAME_BROKER_URL"] = str(self.spec.redis_url)
            env["QFRAME_SECRET_KEY"] = "qframe-bench-secret"
        return env

    def prepare(self) -> None:
        """Build the producer's client from the same settings as the cluster."""
        import qframe

        if hasattr(qframe, "Client") and hasattr(qframe, "load_config"):
            self.client: Any = qframe.Client(qframe.load_config({}))
        else:  # the module-level API reads the same QFRAME_* variables
            self.client = qframe

    def worker_commands(self) -> list[list[str]]:
        """``qframe cluster --name bench --workers N`` (the cluster forks the workers)."""
        args = ["cluster", "--name", self.queue(), "--workers", str(self.spec.workers)]
        script = shutil.which("qframe", path=str(Path(sys.executable).parent))
        if script:
            return [[script, *args]]
        return [python_call_cmd("qframe.cli:main", *args)]

    def enqueue(self, x: int) -> Any:
        """``async_task("qframe_tasks.inc", x)`` (io mode: ``nap``) returns the task id."""
        return self.client.async_task(f"qframe_tasks.{self.spec.options.get('task', 'inc')}", x)

    def check(self, handle: Any) -> Any:
        """``result(task_id)`` without waiting; None while not stored."""
        value = self.client.result(handle)
        return PENDING if value is None else value

    def wait(self, handle: Any, timeout: float) -> Any:
        """``result(task_id, wait=seconds)``."""
        return self.client.result(handle, wait=timeout)

    def close(self) -> None:
        """Close the client if it can be closed."""
        closer = getattr(self.client, "close", None)
        if callable(closer) and self.client is not sys.modules.get("qframe"):
            closer()

    def version(self) -> str:
        """qframe's version (and qframe-redis's on Redis)."""
        core = version("qframe")
        if self.spec.backend == "redis":
            try:
                return f"{core} (qframe-redis {version('qframe-redis')})"
            except Exception:
                return core
        return core
