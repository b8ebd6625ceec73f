"""``manage.py qcluster`` subprocesses on the test databases, for the cluster tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qframe.testing.servers import die_with_parent

HERE = Path(__file__).parent


def cluster_env(alias: str, q_cluster: dict[str, Any] | None = None, **qframe: Any) -> dict[str, str]:
    """The environment of a cluster subprocess: the test databases pytest-django made."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("QFRAME_")}
    env.update(
        DJANGO_SETTINGS_MODULE="djtest_settings",
        PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        QFRAME_TEST_SQLITE=str(settings.DATABASES["default"]["NAME"]),
        QFRAME_TEST_DB_ALIAS=alias,
        QFRAME_TEST_QFRAME=json.dumps(qframe),
    )
    if "pg" in settings.DATABASES:
        env.update(
            QFRAME_TEST_PG_NAME=str(settings.DATABASES["pg"]["NAME"]),
            QFRAME_TEST_PG_PORT=str(settings.DATABASES["pg"]["PORT"]),
        )
    else:
        env["QFRAME_TEST_NO_PG"] = "1"
    if q_cluster is not None:
        env["QFRAME_TEST_Q_CLUSTER"] = json.dumps(q_cluster)
    return env


@contextlib.contextmanager
def qcluster(env: dict[str, str], log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``manage.py qcluster *args`` in the background; SIGTERM (then SIGKILL) at the end."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(HERE / "manage.py"), "qcluster", *args],
            cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
        )  # fmt: skip
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """SIGTERM the cluster and wait for its orderly stop (SIGKILL after ``timeout``)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


def wait_for(predicate: Any, timeout: float, what: str, log: Path | None = None) -> None:
    """Poll ``predicate`` every 0.1 s until it is true; fail after ``timeout`` s with the log's tail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"{what} within {timeout:g} s\n{tail}")
        time.sleep(0.1)
