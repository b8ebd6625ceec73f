"""qframe on MongoDB (qframe-mongo): broker round trips and end-to-end throughput.

Needs qframe and qframe-mongo installed, and either a server URL or SecantusDB's
``secantusd-py`` (started here on a free loopback port with a temporary data directory,
every commit fsynced, and killed at exit)::

    python bench/mongo.py --tasks 300 --workers 2
    python bench/mongo.py --url mongodb://127.0.0.1:27017/qframe_bench   # a real MongoDB

It measures, one after the other on a fresh collection prefix: ``enqueue`` one call per
task, ``enqueue_many`` in one call, ``dequeue(1)`` + ``ack`` per message and
``dequeue(10)`` + ``ack_many`` per batch (each over a backlog of ``--tasks`` messages),
then a ``qframe cluster`` with ``--workers`` workers running ``--tasks`` no-op tasks
(``math.floor``) from the first enqueue until the group has every result.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from qframe_mongo import MongoBroker

from qframe.client import Client
from qframe.config import load as load_config


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tasks", type=int, default=300, help="messages / tasks per measurement (default 300)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the cluster (default 2)")
    parser.add_argument("--url", default=None, help="a MongoDB URL to use instead of starting SecantusDB")
    return parser.parse_args(argv)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_secantus(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start SecantusDB and wait until it answers ``ping``; return the process and its URL."""
    beside = Path(sys.executable).with_name("secantusd-py")
    binary = str(beside) if beside.is_file() else shutil.which("secantusd-py")
    if binary is None:
        raise SystemExit("secantusd-py is not installed: pip install secantusdb, or pass --url")
    port = free_port()
    command = [binary, "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(directory / "data")]
    process = subprocess.Popen([*command, "--log-level", "WARNING", "--sync-on-commit"])
    url = f"mongodb://127.0.0.1:{port}/qframe_bench"
    probe = MongoBroker(url, "probe", serverSelectionTimeoutMS=500)
    deadline = time.monotonic() + 30
    while True:
        try:
            probe.ping()
            break
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("SecantusDB did not answer within 30 s") from None
            time.sleep(0.1)
    probe.close()
    return process, url


def rate(count: int, run: Callable[[], None]) -> float:
    """Operations per second of ``run()``, which performs ``count`` operations."""
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def broker_rates(url: str, tasks: int) -> dict[str, float]:
    """Messages per second of the broker's calls, each over a backlog of ``tasks`` messages."""
    broker = MongoBroker(url, "bench", prefix=f"b{uuid.uuid4().hex[:8]}")
    payloads = [os.urandom(200) for _ in range(tasks)]
    figures = {"enqueue (one call each)": rate(tasks, lambda: [broker.enqueue(p) for p in payloads] and None)}

    def drain(batch: int) -> None:
        while messages := broker.dequeue(batch):
            broker.ack_many([m.ack_id for m in messages])

    figures["dequeue(1) + ack"] = rate(tasks, lambda: drain(1))
    figures["enqueue_many (one call)"] = rate(tasks, lambda: broker.enqueue_many(payloads) and None)
    figures["dequeue(10) + ack_many"] = rate(tasks, lambda: drain(10))
    broker.purge()
    broker.close()
    return figures


def cluster_rate(url: str, tasks: int, workers: int, directory: Path) -> float:
    """Tasks per second through a real cluster, from the first enqueue until the last result."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "QFRAME_NAME": name,
        "QFRAME_BROKER": "mongo",
        "QFRAME_BROKER_URL": url,
        "QFRAME_SECRET_KEY": uuid.uuid4().hex,
        "QFRAME_WORKERS": str(workers),
        "QFRAME_PLUGINS": "",
    }
    cluster = subprocess.Popen([sys.executable, "-m", "qframe", "cluster"], cwd=directory, env=env)
    try:
        client = Client(
            load_config(environ={k: v for k, v in env.items() if k.startswith("QFRAME_")}, cwd=directory)
        )
        client.store.ping()
        start = time.perf_counter()
        client.async_tasks("math.floor", [(i + 0.5,) for i in range(tasks)], group=name)
        deadline = time.monotonic() + 600
        while client.count_group(name) < tasks:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {client.count_group(name)} of {tasks} tasks finished in 600 s")
            time.sleep(0.2)
        elapsed = time.perf_counter() - start
        client.close()
        return tasks / elapsed
    finally:
        cluster.terminate()
        cluster.wait(60)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the measurements and print one line per figure."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qframe-mongo-bench-") as tmp:
        directory = Path(tmp)
        server = None
        url = args.url
        if url is None:
            server, url = start_secantus(directory)
        try:
            target = "SecantusDB" if server else url
            print(f"qframe-mongo on {target}, {args.tasks} messages/tasks, {args.workers} workers")
            for label, value in broker_rates(url, args.tasks).items():
                print(f"  broker {label:<28} {value:8.0f} msg/s")
            tasks_per_second = cluster_rate(url, args.tasks, args.workers, directory)
            print(f"  cluster end to end ({args.workers} workers){'':<6} {tasks_per_second:8.0f} tasks/s")
        finally:
            if server is not None:
                server.kill()
                server.wait(10)


if __name__ == "__main__":
    main()
