"""qframe on one broker: does the cost grow with the work? Backlog, results, memory, start-up.

Needs qframe, psutil and the broker's plugin and server (no peers): qframe-redis and
``redis-server`` (the default); nothing more for ``--broker sqlite``; qframe-sqs and
moto[server] for ``sqs``; qframe-mongo and secantusdb for ``mongo``; qframe-django,
Django, psycopg and PostgreSQL's binaries for ``orm``::

    python bench/scale.py                                # defaults, about 1.5 minutes on 2 cores
    python bench/scale.py --broker sqlite --only backlog,lookup,budget   # the embedded default
    python bench/scale.py --results 1000000 --drift-tasks 200000
    python bench/scale.py --only backlog,lookup --backlog 20000 --results 20000   # quick
    python bench/scale.py --broker sqs --only backlog    # moto_server: about 3.5 minutes
    python bench/scale.py --broker mongo --only backlog,lookup   # SecantusDB: about 3 minutes
    python bench/scale.py --broker orm --only backlog,lookup     # PostgreSQL: about 2.5 minutes

Every number is printed next to its baseline from the same run, against one throw-away
server started for the run and killed at exit (its process group), whatever happens:
``redis-server`` (free loopback port, ``--save '' --appendonly no``), moto_server,
SecantusDB or PostgreSQL (bench/servers.py); SQLite needs none.

* **enqueue**: ``async_tasks`` of ``--bulk`` tasks in one call vs ``async_task`` one call
  per task, tasks/s, no cluster running.
* **footprint**: RSS, PSS and USS of every process of an idle ``--workers`` cluster, and its
  start-up time from launching ``python -m qframe cluster`` to the last ``ready for work``
  line and to the ``running.`` line.
* **backlog**: tasks/s of a cluster draining ``--window`` tasks vs the first ``--window``
  tasks of a ``--backlog``-task backlog (both queued with ``async_tasks`` before the
  cluster starts).
* **lookup**: ``result(task_id)`` (no wait) of existing ids with ``--results-base``
  results stored vs ``--results``; the store is filled through its driver, no task runs.
* **drift**: RSS of every cluster process after 10% and at 100% of ``--drift-tasks``
  tasks, with ``QFRAME_RECYCLE=0`` so workers are never replaced.
* **budget**: CPU microseconds per task of each cluster process (and of ``redis-server``,
  moto_server or secantusd-py; not PostgreSQL's backends) while ``--budget-tasks`` queued
  tasks drain.

``--broker sqlite``: the embedded SQLite broker and store, one file per database in the
work directory. ``sqs``: qframe-sqs on moto_server, one queue per database, results in
qframe's SQLite store (SQS keeps none, so ``lookup`` is skipped). ``mongo``: qframe-mongo
and its mongo store on SecantusDB, one database each. ``orm``: qframe-django's orm broker
and store on PostgreSQL, one database each, clusters started as ``python -m django
qcluster``. Sizes left out default per broker (``--help``; the tables say which): moto's
and SecantusDB's calls cost more the more they hold.

Each measurement has a hard time limit and stops everything it started, whatever happens.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import psutil  # noqa: E402
from common import (  # noqa: E402
    TASKS_DIR,
    RedisAddress,
    Table,
    fmt_num,
    fmt_ratio,
    median,
    percentile,
    ratio,
    redis_command,
    redis_server,
    redis_version,
    stop_groups,
    tail,
)
from servers import ServerUnavailable, moto_server, postgres_bin, postgres_server, secantus_server  # noqa: E402

import qframe  # noqa: E402
from qframe.drivers import make_broker, make_store  # noqa: E402
from qframe.serialize import result_codec  # noqa: E402
from qframe.stores.base import ResultMeta  # noqa: E402
from qframe.task import TaskResult  # noqa: E402

QUEUE = "scale"
SECRET = "qframe-bench-secret"
TASK = "qframe_tasks.inc"
#: Redis databases: the cluster measurements use 0, the lookup baseline 1 and its big store 2.
CLUSTER_DB, SMALL_DB, BIG_DB = 0, 1, 2
MEASUREMENTS = ("enqueue", "footprint", "backlog", "lookup", "drift", "budget")
MIB = 1024 * 1024

READY_LINE = re.compile(r"ready for work at (\d+)")
RUNNING_LINE = re.compile(r"Q Cluster \S+ running\.")
ROLE_LINES = (
    ("sentinel", re.compile(r"guarding cluster at (\d+)")),
    ("monitor", re.compile(r"monitoring at (\d+)")),
    ("pusher", re.compile(r"pushing tasks at (\d+)")),
)
ROLE_ORDER = ("main", "sentinel", "pusher", "monitor")


# --------------------------------------------------------------------------- time limits


class MeasurementTimeout(Exception):
    """A measurement ran past its hard time limit."""


class _Shield:
    """Defers the exceptions of SIGALRM and SIGTERM handlers while clean-up runs."""

    depth = 0
    pending: BaseException | None = None


def interrupt(exc: BaseException) -> None:
    """Raise ``exc`` from a signal handler now, or at the end of the current :func:`shielded`."""
    if _Shield.depth:
        _Shield.pending = _Shield.pending or exc
        return
    raise exc


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Run the block (starting or stopping processes) without an alarm cutting it short.

    A timeout or SIGTERM arriving meanwhile is raised when the block ends. (The signals
    are not blocked with a mask: a child started inside would inherit the mask.)
    """
    _Shield.depth += 1
    try:
        yield
    finally:
        _Shield.depth -= 1
        if not _Shield.depth and _Shield.pending is not None:
            exc, _Shield.pending = _Shield.pending, None
            raise exc


@contextlib.contextmanager
def hard_timeout(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`MeasurementTimeout` in the main thread after ``seconds`` (SIGALRM).

    One at a time (it is not nestable); clean-up under :func:`shielded` is not cut short.
    """

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        interrupt(MeasurementTimeout(f"{what} took longer than its limit of {seconds:g} s"))

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_deadline(deadline: float, what: str) -> None:
    """Raise :class:`MeasurementTimeout` when ``deadline`` (monotonic) has passed."""
    if time.monotonic() > deadline:
        raise MeasurementTimeout(f"{what} did not finish in time")


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit so every ``finally`` (cluster, redis-server) runs."""
    interrupt(SystemExit(128 + signum))


# --------------------------------------------------------------------------- settings


def base_env(workers: int, **extra: str) -> dict[str, str]:
    """The ``QFRAME_*`` settings every broker's cluster and producer share."""
    return {
        "QFRAME_SECRET_KEY": SECRET,
        "QFRAME_PLUGINS": "",
        "QFRAME_WORKERS": str(workers),
        "QFRAME_NAME": QUEUE,
        **extra,
    }


def qframe_env(address: RedisAddress, workers: int, db: int = CLUSTER_DB, **extra: str) -> dict[str, str]:
    """The ``QFRAME_*`` settings shared by a cluster and its producer on Redis."""
    return {"QFRAME_BROKER": "redis", "QFRAME_BROKER_URL": address.url(db), **base_env(workers, **extra)}


def make_client(env: dict[str, str]) -> qframe.Client:
    """A producer built from exactly ``env`` (no config file, no inherited ``QFRAME_*``)."""
    return qframe.Client(qframe.load_config(environ=env, cwd=TASKS_DIR))


def enqueue_bulk(client: qframe.Client, start: int, count: int) -> float:
    """``async_tasks(inc, [(start,), ...])`` of ``count`` tasks in one call; return its seconds."""
    arguments = [(x,) for x in range(start, start + count)]
    began = time.perf_counter()
    client.async_tasks(TASK, arguments)
    return time.perf_counter() - began


# --------------------------------------------------------------------------- brokers


@dataclass(frozen=True)
class Pace:
    """Slowest believable rates of one broker, per second: the time limits are built from them."""

    enqueue: float  # tasks queued by async_tasks
    drain: float  # tasks a cluster finishes
    fill: float  # results saved through the store driver
    lookup: float  # result() calls


def listening_process(port: int) -> psutil.Process | None:
    """The process listening on TCP ``port`` of this host (None when psutil cannot tell)."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return psutil.Process(conn.pid)
    return None


class Backend:
    """One ``--broker``: its settings, how a database is emptied, how a cluster is started.

    ``db`` numbers one isolated data set on the broker's server (a Redis database, a file,
    a queue, a Mongo or PostgreSQL database): clusters run on :data:`CLUSTER_DB`, the
    lookup's two stores are :data:`SMALL_DB` and :data:`BIG_DB`.
    """

    name = ""
    pace = Pace(enqueue=2_000, drain=250, fill=4_000, lookup=200)
    #: Seconds between two success counts while a cluster drains (each count is a store call).
    poll_pause = 0.005
    #: The broker server's URL, and the name of the process listening on its port ("": none
    #: counted), for a server that is a plain process of its own (moto, SecantusDB).
    url = ""
    listener = ""

    def __init__(self, workers: int, workdir: Path) -> None:
        self.workers = workers
        self.workdir = workdir

    def describe(self) -> str:
        """What the benchmark runs on, for the first line."""
        raise NotImplementedError

    def env(self, db: int = CLUSTER_DB, **extra: str) -> dict[str, str]:
        """The settings of a cluster and its producer on database ``db``."""
        raise NotImplementedError

    def reset(self, db: int = CLUSTER_DB, timeout: float = 10.0) -> None:
        """Empty database ``db`` (no cluster runs on it meanwhile)."""
        raise NotImplementedError

    def cluster_argv(self) -> list[str]:
        """The cluster's command line (its settings come from :meth:`env`)."""
        return [sys.executable, "-m", "qframe", "cluster"]

    def server_processes(self) -> list[tuple[str, psutil.Process]]:
        """The broker's server processes whose CPU the budget counts."""
        found = listening_process(urlsplit(self.url).port or 0) if self.listener else None
        return [(self.listener, found)] if found else []

    def server_note(self) -> str:
        """What the budget says about the server's CPU."""
        return f"{self.listener} is the process listening on its port" if self.listener else ""

    def used_memory(self) -> str:
        """How much the broker's server holds, or ``?``."""
        return "?"

    def skip(self, measurement: str) -> str | None:
        """Why ``measurement`` does not apply to this broker (None: it does)."""
        return None

    def close(self) -> None:
        """Release the producer's admin connections."""


class RedisBackend(Backend):
    """qframe-redis: database ``db`` of one throw-away ``redis-server``."""

    name = "redis"

    def __init__(self, workers: int, workdir: Path, address: RedisAddress) -> None:
        super().__init__(workers, workdir)
        self.address = address

    def describe(self) -> str:
        return f"redis-server {redis_version(self.address)} at {self.address.host}:{self.address.port}"

    def env(self, db: int = CLUSTER_DB, **extra: str) -> dict[str, str]:
        return qframe_env(self.address, self.workers, db, **extra)

    def reset(self, db: int = CLUSTER_DB, timeout: float = 10.0) -> None:
        redis_command(self.address, ("SELECT", db), ("FLUSHDB",), timeout=timeout)

    def server_processes(self) -> list[tuple[str, psutil.Process]]:
        return [("redis-server", psutil.Process(server_pid(self.address)))]

    def used_memory(self) -> str:
        with contextlib.suppress(OSError, RuntimeError):
            info = redis_command(self.address, ("INFO", "memory"))[0].decode(errors="replace")
            for line in info.splitlines():
                if line.startswith("used_memory_human:"):
                    return line.split(":", 1)[1].strip()
        return "?"


class SqliteBackend(Backend):
    """The embedded SQLite broker and store: one file per database in the work directory."""

    name = "sqlite"

    def describe(self) -> str:
        return f"the embedded SQLite broker (SQLite {sqlite3.sqlite_version}, files in {self.workdir})"

    def path(self, db: int) -> Path:
        return self.workdir / f"db{db}.sqlite3"

    def env(self, db: int = CLUSTER_DB, **extra: str) -> dict[str, str]:
        url = f"sqlite:///{self.path(db)}"
        return {"QFRAME_BROKER": "sqlite", "QFRAME_BROKER_URL": url, **base_env(self.workers, **extra)}

    def reset(self, db: int = CLUSTER_DB, timeout: float = 10.0) -> None:
        for suffix in ("", "-wal", "-shm"):
            self.path(db).with_name(self.path(db).name + suffix).unlink(missing_ok=True)

    def used_memory(self) -> str:
        size = sum(path.stat().st_size for path in self.workdir.glob("db*.sqlite3*"))
        return f"{size / MIB:.1f} MiB on disk"


#: Dummy credentials and region for moto's endpoint (bench/adapters/sqs.py uses the same).
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class SqsBackend(Backend):
    """qframe-sqs on moto's server: a queue per database, results in qframe's SQLite store.

    SQS keeps no results, so (as in the harness's sqs mode) the store is ``sqlite``, one
    file per database in the work directory. Emptying a database deletes its queue and has
    the broker create it again at once (moto allows one PurgeQueue a minute; the URL stays
    the same, so a producer that stays open keeps working), and removes the store's files.
    """

    name = "sqs"
    pace = Pace(enqueue=100, drain=20, fill=1_000, lookup=50)
    poll_pause = 0.02
    listener = "moto_server"

    def __init__(self, workers: int, workdir: Path, url: str) -> None:
        super().__init__(workers, workdir)
        self.url = url
        os.environ.update(AWS_ENV)  # boto3 in this process (the producer) reads them
        import boto3

        self.sqs: Any = boto3.client(
            "sqs", endpoint_url=url, region_name=AWS_ENV["AWS_DEFAULT_REGION"],
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip

    def describe(self) -> str:
        return f"moto_server {package_version('moto')} at {self.url} (results in SQLite files)"

    def queue(self, db: int) -> str:
        return QUEUE if db == CLUSTER_DB else f"{QUEUE}-{db}"

    def store_path(self, db: int) -> Path:
        return self.workdir / f"sqs-results-{db}.sqlite3"

    def env(self, db: int = CLUSTER_DB, **extra: str) -> dict[str, str]:
        return {
            **AWS_ENV,
            "AWS_ENDPOINT_URL_SQS": self.url,
            "QFRAME_BROKER": "sqs",
            "QFRAME_BROKER_URL": f"sqs://?region={AWS_ENV['AWS_DEFAULT_REGION']}&endpoint_url={self.url}",
            "QFRAME_STORE": "sqlite",
            "QFRAME_STORE_URL": f"sqlite:///{self.store_path(db)}",
            **base_env(self.workers, QFRAME_NAME=self.queue(db), **extra),
        }

    def reset(self, db: int = CLUSTER_DB, timeout: float = 10.0) -> None:
        from botocore.exceptions import ClientError

        try:
            queue_url = self.sqs.get_queue_url(QueueName=self.queue(db))["QueueUrl"]
        except ClientError as exc:
            if "NonExistentQueue" not in str(exc) and "QueueDoesNotExist" not in str(exc):
                raise
        else:
            self.sqs.delete_queue(QueueUrl=queue_url)
        broker = make_broker(qframe.load_config(environ=self.env(db), cwd=TASKS_DIR))
        try:
            broker.ping()  # creates the queue with the attributes the broker gives it
        finally:
            broker.close()
        path = self.store_path(db)
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)

    def server_note(self) -> str:
        return f"{super().server_note()}; the results go to SQLite files (no server)"

    def skip(self, measurement: str) -> str | None:
        if measurement == "lookup":
            return (
                "SQS keeps no results: qframe-sqs needs a store of another driver (SQLite here, as in "
                "the harness), so result() is SQLite's, which --broker sqlite measures"
            )
        return None

    def close(self) -> None:
        self.sqs.close()


class MongoBackend(Backend):
    """qframe-mongo on SecantusDB: a Mongo database per ``db``, its Mongo store beside the broker."""

    name = "mongo"
    pace = Pace(enqueue=100, drain=2, fill=100, lookup=20)
    #: A success count is an aggregation over every result, O(results) on SecantusDB, which
    #: shares the 2 cores with the cluster: counted 5 times a second, not 200.
    poll_pause = 0.2
    listener = "secantusd-py"

    def __init__(self, workers: int, workdir: Path, url: str) -> None:
        super().__init__(workers, workdir)
        self.url = url
        import pymongo

        self.admin: Any = pymongo.MongoClient(url, serverSelectionTimeoutMS=5_000)

    def describe(self) -> str:
        version = package_version("secantusdb")
        return f"SecantusDB {version} at {self.url} (Mongo wire; results in its mongo store)"

    def database(self, db: int) -> str:
        return f"qframe_scale_{db}"

    def env(self, db: int = CLUSTER_DB, **extra: str) -> dict[str, str]:
        url = f"{self.url}/{self.database(db)}"  # the store follows the broker (the plugin's default)
        return {"QFRAME_BROKER": "mongo", "QFRAME_BROKER_URL": url, **base_env(self.workers, **extra)}

    def reset(self, db: int = CLUSTER_DB, timeout: float = 10.0) -> None:
        self.admin.drop_database(self.database(db))

    def used_memory(self) -> str:
        counts = []
        with contextlib.suppress(Exception):
            for db in (SMALL_DB, BIG_DB):
                counts.append(
                    f"{self.admin[self.database(db)]['qframe.results'].estimated_document_count():,}"
                )
        return f"results documents {' / '.join(counts)}" if counts else "?"

    def close(self) -> None:
        self.admin.close()


class OrmBackend(Backend):
    """qframe-django's ``orm`` broker and store on PostgreSQL: a database per ``db``.

    Clusters run as the harness runs them: ``python -m django qcluster`` with
    ``DJANGO_SETTINGS_MODULE=qframe_django_settings`` (bench/tasks/) on ``BENCH_PG_URL``.
    This process (the producer) configures Django from the same module, with one database
    alias per ``db`` (``default`` is the clusters'), so ``QFRAME_BROKER_URL`` is the alias.
    The three databases are created and migrated here, and emptied with ``TRUNCATE``.
    """

    name = "orm"
    pace = Pace(enqueue=1_000, drain=50, fill=1_000, lookup=100)
    poll_pause = 0.01

    def __init__(self, workers: int, workdir: Path, url: str) -> None:
        super().__init__(workers, workdir)
        self.url = url
        import django
        import psycopg
        from django.conf import settings
        from django.core.management import call_command

        if str(TASKS_DIR) not in sys.path:
            sys.path.insert(0, str(TASKS_DIR))
        os.environ["BENCH_PG_URL"] = self.database_url(CLUSTER_DB)  # read when the module is imported
        try:
            import qframe_django_settings as base
        finally:
            os.environ.pop("BENCH_PG_URL", None)
        values = {key: getattr(base, key) for key in dir(base) if key.isupper()}
        template = base.DATABASES["default"]
        values["DATABASES"] = {
            self.alias(db): {**template, "NAME": self.database(db)} for db in (CLUSTER_DB, SMALL_DB, BIG_DB)
        }
        settings.configure(**values)
        django.setup()
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
            for db in (CLUSTER_DB, SMALL_DB, BIG_DB):
                connection.execute(f'CREATE DATABASE "{self.database(db)}"')
        for db in (CLUSTER_DB, SMALL_DB, BIG_DB):
            call_command("migrate", database=self.alias(db), verbosity=0, interactive=False)

    def describe(self) -> str:
        binaries = postgres_bin()
        return (
            f"PostgreSQL {binaries.parent.name if binaries else '?'} at {self.url} "
            f"(qframe-django {package_version('qframe-django')}, Django {package_version('django')})"
        )

    def database(self, db: int) -> str:
        return f"qframe_scale_{db}"

    def database_url(self, db: int) -> str:
        return f"{self.url.rsplit('/', 1)[0]}/{self.database(db)}"

    def alias(self, db: int) -> str:
        return "default" if db == CLUSTER_DB else self.database(db)

    def env(self, db: int = CLUSTER_DB, **extra: str) -> dict[str, str]:
        path = [str(TASKS_DIR), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
        return {
            "DJANGO_SETTINGS_MODULE": "qframe_django_settings",
            "BENCH_PG_URL": self.database_url(db),
            "PYTHONPATH": os.pathsep.join(path),
            "QFRAME_BROKER": "orm",
            "QFRAME_BROKER_URL": self.alias(db),  # the store follows the broker: orm on the same alias
            **base_env(self.workers, **extra),
        }

    def cluster_argv(self) -> list[str]:
        """``django-admin qcluster`` (what ``manage.py qcluster`` runs), as the harness starts it."""
        return [sys.executable, "-m", "django", "qcluster", "--name", QUEUE, "--workers", str(self.workers)]

    def reset(self, db: int = CLUSTER_DB, timeout: float = 10.0) -> None:
        from django.apps import apps
        from django.db import connections

        connection = connections[self.alias(db)]
        tables = [model._meta.db_table for model in apps.get_app_config("qframe_django").get_models()]
        with connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {int(timeout * 1000)}")
            cursor.execute(
                f"TRUNCATE {', '.join(connection.ops.quote_name(t) for t in tables)} RESTART IDENTITY"
            )
            cursor.execute("SET statement_timeout = 0")

    def server_note(self) -> str:
        return "PostgreSQL's processes (one backend per connection) are not counted"

    def used_memory(self) -> str:
        from django.db import connections

        sizes = []
        with contextlib.suppress(Exception):
            for db in (SMALL_DB, BIG_DB):
                with connections[self.alias(db)].cursor() as cursor:
                    cursor.execute("SELECT pg_database_size(current_database())")
                    sizes.append(f"{cursor.fetchone()[0] / MIB:,.1f}")
        return f"databases of {' / '.join(sizes)} MiB" if sizes else "?"

    def close(self) -> None:
        from django.db import connections

        connections.close_all()


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or ``?``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


#: The server each broker needs (started once per run), by ``--broker``.
SERVERS: dict[str, Callable[[], contextlib.AbstractContextManager[str]]] = {
    "sqs": moto_server,
    "mongo": secantus_server,
    "orm": postgres_server,
}


@contextlib.contextmanager
def backend_for(broker: str, workers: int, workdir: Path) -> Iterator[Backend]:
    """Start the server ``broker`` needs (if any) for the block; always stop it.

    A server that cannot start raises :class:`ServerUnavailable` (one line says why).
    """
    if broker == "sqlite":
        yield SqliteBackend(workers, workdir)
        return
    if broker == "redis":
        with redis_server() as address:
            yield RedisBackend(workers, workdir, address)
        return
    with contextlib.ExitStack() as stack:
        with shielded():  # a SIGTERM while the server starts waits until it is tracked
            url = stack.enter_context(SERVERS[broker]())
        classes: dict[str, Callable[[int, Path, str], Backend]] = {
            "sqs": SqsBackend, "mongo": MongoBackend, "orm": OrmBackend,
        }  # fmt: skip
        backend = classes[broker](workers, workdir, url)
        stack.callback(backend.close)
        try:
            yield backend
        finally:
            with shielded():
                stack.close()


# --------------------------------------------------------------------------- the cluster


@dataclass(frozen=True)
class Memory:
    """Bytes of one process at one moment: resident (RSS), proportional (PSS), unique (USS)."""

    pid: int
    rss: int
    pss: int
    uss: int


KINDS = ("rss", "pss", "uss")


def total(memory: dict[str, Memory], kind: str) -> int:
    """The sum of one kind (``rss``, ``pss``, ``uss``) over the processes of a snapshot."""
    return sum(getattr(m, kind) for m in memory.values())


class ClusterProcess:
    """``python -m qframe cluster`` in its own process group, its log lines timestamped.

    The log (stdout and stderr together) is read by a thread that notes the monotonic
    time of every line, so start-up is timed to the line, not to the log's 1 s clock.
    Leaving the ``with`` block stops the cluster: SIGTERM, then SIGKILL of its group.
    """

    def __init__(self, env: dict[str, str], log_path: Path, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("QFRAME_")}
        self.env = {**inherited, **env}
        self.log_path = log_path
        self.lines: list[tuple[float, str]] = []
        self.changed = threading.Condition()
        self.proc: subprocess.Popen[bytes] | None = None
        self.reader: threading.Thread | None = None
        self.launched = math.nan

    def __enter__(self) -> ClusterProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        """Launch the cluster and wait for its ``running.`` line."""
        with shielded():  # never lose track of a started process to an alarm
            self.launched = time.monotonic()
            self.proc = subprocess.Popen(
                self.argv,
                cwd=TASKS_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.reader = threading.Thread(target=self._read, name="cluster-log", daemon=True)
        self.reader.start()
        self.wait_for(RUNNING_LINE, timeout)

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with open(self.log_path, "ab") as log:
            for raw in self.proc.stdout:
                now = time.monotonic()
                log.write(raw)
                with self.changed:
                    self.lines.append((now, raw.decode(errors="replace").rstrip("\n")))
                    self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def matches(self, pattern: re.Pattern[str]) -> list[tuple[float, re.Match[str]]]:
        """Every log line matching ``pattern`` so far, with the time it was read."""
        with self.changed:
            return [(t, m) for t, line in self.lines if (m := pattern.search(line))]

    def wait_for(self, pattern: re.Pattern[str], timeout: float, count: int = 1) -> float:
        """Wait for the ``count``-th line matching ``pattern``; return when it was read."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = [t for t, line in self.lines if pattern.search(line)]
                if len(found) >= count:
                    return found[count - 1]
                if self.proc is not None and self.proc.poll() is not None:
                    self.changed.wait(0.2)  # let the reader catch the last lines
                    raise RuntimeError(f"the cluster exited ({self.proc.returncode}):\n{self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise MeasurementTimeout(
                        f"no {pattern.pattern!r} line within {timeout:g} s:\n{self.log_tail()}"
                    )
                self.changed.wait(min(left, 0.1))

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the cluster's log."""
        return tail(self.log_path, lines)

    def check_alive(self) -> None:
        """Raise when the cluster's main process has exited."""
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise RuntimeError(f"the cluster exited ({code}):\n{self.log_tail()}")

    def startup(self, workers: int) -> tuple[float, float]:
        """Seconds from launch to the last worker's ``ready for work`` and to ``running.``."""
        ready = [t for t, _ in self.matches(READY_LINE)]
        running = [t for t, _ in self.matches(RUNNING_LINE)]
        last_ready = ready[workers - 1] - self.launched if len(ready) >= workers else math.nan
        return last_ready, (running[0] - self.launched if running else math.nan)

    def processes(self) -> list[tuple[str, psutil.Process]]:
        """Every process of the cluster, labelled by role: the main process and its descendants.

        Roles come from the pids the processes log at start-up (``guarding cluster at``,
        ``pushing tasks at``, ``monitoring at``, ``ready for work at``); a descendant that
        logged none is labelled ``other``.
        """
        if self.proc is None:
            return []
        roles: dict[int, str] = {}
        for role, pattern in ROLE_LINES:
            for _, match in self.matches(pattern):
                roles[int(match.group(1))] = role
        for number, (_, match) in enumerate(self.matches(READY_LINE), 1):
            roles[int(match.group(1))] = f"worker {number}"
        main = psutil.Process(self.proc.pid)
        labelled = [("main", main)]
        for child in main.children(recursive=True):
            labelled.append((roles.get(child.pid, f"other {child.pid}"), child))
        return sorted(labelled, key=lambda item: role_key(item[0]))

    def memory(self) -> dict[str, Memory]:
        """RSS, PSS and USS of every cluster process, by role."""
        out: dict[str, Memory] = {}
        for role, process in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                info = process.memory_full_info()
                out[role] = Memory(process.pid, info.rss, info.pss, info.uss)
        return out

    def stop(self) -> None:
        """SIGTERM the main process, SIGKILL the whole group after 15 s; never raises."""
        if self.proc is None:
            return
        with shielded():
            stop_groups([self.proc], grace=15)
            if self.reader is not None:
                self.reader.join(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def role_key(role: str) -> tuple[int, str]:
    """Sort key of a role label: main, sentinel, pusher, monitor, workers, others."""
    if role in ROLE_ORDER:
        return ROLE_ORDER.index(role), ""
    if role.startswith("worker "):
        return len(ROLE_ORDER), role.split()[1].zfill(6)
    return len(ROLE_ORDER) + 1, role


def wait_successes(
    client: qframe.Client,
    cluster: ClusterProcess,
    target: int,
    deadline: float,
    on_sample: Callable[[float, int], None] | None = None,
    pause: float = 0.005,
) -> list[tuple[float, int]]:
    """Poll the store's success count (``tally``, O(1) on Redis) until it reaches ``target``.

    Returns every ``(monotonic time, successes)`` sample; ``on_sample`` sees each one.
    """
    store = client.store
    samples: list[tuple[float, int]] = []
    while True:
        done = store.tally().successes
        now = time.monotonic()
        samples.append((now, done))
        if on_sample is not None:
            on_sample(now, done)
        if done >= target:
            return samples
        cluster.check_alive()
        check_deadline(deadline, f"waiting for {target:,} results")
        time.sleep(pause)


def crossing(samples: Sequence[tuple[float, int]], count: int) -> tuple[float, int]:
    """The first sample whose count reached ``count``."""
    return next(s for s in samples if s[1] >= count)


# --------------------------------------------------------------------------- measurements


@dataclass
class Context:
    """What every measurement needs: the broker, the options, where logs go."""

    backend: Backend
    args: argparse.Namespace
    workdir: Path
    results: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    checks: list[tuple[str, str, str, bool | None]] = field(default_factory=list)
    counter: int = 0

    def env(self, db: int = CLUSTER_DB, **extra: str) -> dict[str, str]:
        """The settings of a cluster and its producer on database ``db`` of the chosen broker."""
        return self.backend.env(db, **extra)

    def reset(self, db: int = CLUSTER_DB, timeout: float = 10.0) -> None:
        """Empty database ``db``: FLUSHDB on Redis, the file removed on SQLite, and so on."""
        self.backend.reset(db, timeout)

    def cluster(self, env: dict[str, str], label: str) -> ClusterProcess:
        """A cluster of the chosen broker (not started yet), logging to a fresh file."""
        return ClusterProcess(env, self.log_path(label), self.backend.cluster_argv())

    def wait(
        self,
        client: qframe.Client,
        cluster: ClusterProcess,
        target: int,
        deadline: float,
        on_sample: Callable[[float, int], None] | None = None,
        pause: float | None = None,
    ) -> list[tuple[float, int]]:
        """:func:`wait_successes`, polling at the broker's pace unless ``pause`` is given."""
        pause = self.backend.poll_pause if pause is None else max(pause, self.backend.poll_pause)
        return wait_successes(client, cluster, target, deadline, on_sample, pause)

    def log_path(self, label: str) -> Path:
        """A fresh log file for one cluster run."""
        self.counter += 1
        return self.workdir / f"{self.counter:02d}-{label}.log"

    def check(self, what: str, value: str, target: str, met: bool | None) -> None:
        """Record one target for the summary (``met`` None: no target, informational)."""
        self.checks.append((what, value, target, met))


def measure_enqueue(ctx: Context) -> None:
    """Bulk (``async_tasks``, one call) vs single-call (``async_task``) enqueue, no cluster."""
    args = ctx.args
    client = make_client(ctx.env())
    bulk: list[float] = []
    single: list[float] = []
    try:
        client.queue_size()  # connect before timing anything
        for rep in range(args.reps):
            ctx.reset()
            bulk.append(args.bulk / enqueue_bulk(client, 0, args.bulk))
            ctx.reset()
            began = time.perf_counter()
            for x in range(args.single):
                client.async_task(TASK, x)
            single.append(args.single / (time.perf_counter() - began))
            print(f"  enqueue rep {rep + 1}: bulk {bulk[-1]:,.0f}/s  single {single[-1]:,.0f}/s", flush=True)
    finally:
        client.close()
        ctx.reset()
    bulk_rate, single_rate = median(bulk), median(single)
    table = Table(
        f"Enqueue on {args.broker} (no cluster running), tasks/s, median of {args.reps}"
        + sizes_note(args, "bulk", "single"),
        ["call", "tasks", "tasks/s", "vs single", *[f"rep {i + 1}" for i in range(args.reps)]],
    )
    table.add(
        "async_tasks (one call)",
        fmt_num(args.bulk),
        fmt_num(bulk_rate),
        fmt_ratio(ratio(bulk_rate, single_rate)),
        *[fmt_num(v) for v in bulk],
    )
    table.add(
        "async_task (one call each)",
        fmt_num(args.single),
        fmt_num(single_rate),
        "1.00x",
        *[fmt_num(v) for v in single],
    )
    ctx.tables.append(table)
    ctx.results["enqueue"] = {"bulk": bulk, "single": single}
    ctx.check(
        f"bulk enqueue ({args.bulk:,} in one call)",
        f"{bulk_rate:,.0f}/s",
        ">= 50,000/s",
        bulk_rate >= 50_000,
    )


def measure_footprint(ctx: Context) -> None:
    """Start-up times and the memory of an idle cluster, ``--startup-reps`` fresh starts."""
    args = ctx.args
    ready_s: list[float] = []
    running_s: list[float] = []
    per_role: dict[str, list[Memory]] = {}
    totals: list[dict[str, int]] = []
    for rep in range(args.startup_reps):
        ctx.reset()
        with ctx.cluster(ctx.env(), "footprint") as cluster:
            cluster.start(timeout=30)
            cluster.wait_for(READY_LINE, 5, count=args.workers)
            last_ready, running = cluster.startup(args.workers)
            ready_s.append(last_ready)
            running_s.append(running)
            time.sleep(args.idle)  # let it settle into idling
            cluster.check_alive()
            memory = cluster.memory()
        for role, mem in memory.items():
            per_role.setdefault(role, []).append(mem)
        totals.append({"processes": len(memory), **{kind: total(memory, kind) for kind in KINDS}})
        print(
            f"  start {rep + 1}: last ready {last_ready:.3f} s, running {running:.3f} s; "
            f"{len(memory)} processes, "
            + ", ".join(f"{kind.upper()} {totals[-1][kind] / MIB:.1f} MiB" for kind in KINDS),
            flush=True,
        )
    ctx.reset()
    table = Table(
        f"Idle {args.workers}-worker cluster on {args.broker}: memory per process (median of "
        f"{args.startup_reps} starts, {args.idle:g} s after 'running.')",
        ["process", "RSS MiB", "PSS MiB", "USS MiB"],
    )
    for role in sorted(per_role, key=role_key):
        mems = per_role[role]
        table.add(role, *[f"{median([getattr(m, kind) for m in mems]) / MIB:.1f}" for kind in KINDS])
    sums = {kind: median([t[kind] for t in totals]) for kind in KINDS}
    count = int(median([t["processes"] for t in totals]))
    table.add(f"total ({count} processes)", *[f"{sums[kind] / MIB:.1f}" for kind in KINDS])
    table.notes.append(
        "RSS counts the pages the forked processes share once per process; PSS splits each "
        "shared page among its sharers (the sum of PSS is the cluster's real share of RAM); "
        "USS counts only each process's private pages"
    )
    ctx.tables.append(table)
    start_table = Table(
        f"Start-up of `{' '.join(['python', *ctx.backend.cluster_argv()[1:4]])}` on {args.broker} "
        f"({args.workers} workers), seconds from launch",
        ["line", "median", "max", *[f"start {i + 1}" for i in range(args.startup_reps)]],
    )
    start_table.add(
        f"last 'ready for work' ({args.workers})",
        f"{median(ready_s):.3f}",
        f"{max(ready_s):.3f}",
        *[f"{v:.3f}" for v in ready_s],
    )
    start_table.add(
        "'Q Cluster ... running.'",
        f"{median(running_s):.3f}",
        f"{max(running_s):.3f}",
        *[f"{v:.3f}" for v in running_s],
    )
    ctx.tables.append(start_table)
    ctx.results["footprint"] = {
        "ready_s": ready_s,
        "running_s": running_s,
        "totals": totals,
        "per_role": {role: [vars(m) for m in mems] for role, mems in per_role.items()},
    }
    ctx.check(
        f"idle cluster, sum of RSS ({count} procs)",
        f"{sums['rss'] / 1e6:.1f} MB ({sums['rss'] / MIB:.1f} MiB)",
        "<= 150 MB",
        sums["rss"] <= 150e6,
    )
    ctx.check(
        "start-up to 'running.' (median)",
        f"{median(running_s):.3f} s",
        "< 1 s",
        median(running_s) < 1.0,
    )


def drain(ctx: Context, queued: int) -> dict[str, float]:
    """Queue ``queued`` tasks, start a cluster, and time its first ``--window`` results."""
    args = ctx.args
    window = args.window
    env = ctx.env()
    ctx.reset()
    client = make_client(env)
    try:
        enqueue_s = enqueue_bulk(client, 0, queued)
        with ctx.cluster(env, f"backlog-{queued}") as cluster:
            cluster.start(timeout=30)
            running = cluster.matches(RUNNING_LINE)[0][0]
            samples = ctx.wait(
                client, cluster, window, time.monotonic() + 120 + window / ctx.backend.pace.drain
            )
            still_queued = client.queue_size()
    finally:
        client.close()
        ctx.reset()
    end_t, end_n = samples[-1]
    first_t, first_n = crossing(samples, max(1, window // 10))
    return {
        "queued": queued,
        "enqueue_s": enqueue_s,
        # the window's tasks over the time from 'running.' until they were all saved
        "first_rate": window / (end_t - running),
        # steady state: from 10% of the window to its end, start-up excluded
        "steady_rate": (end_n - first_n) / (end_t - first_t) if end_t > first_t else math.nan,
        "still_queued": still_queued,
    }


def measure_backlog(ctx: Context) -> None:
    """Draining ``--window`` tasks alone vs the first ``--window`` of a ``--backlog`` backlog."""
    args = ctx.args
    runs: dict[int, list[dict[str, float]]] = {args.window: [], args.backlog: []}
    for rep in range(args.reps):
        order = [args.window, args.backlog] if rep % 2 == 0 else [args.backlog, args.window]
        for queued in order:
            run = drain(ctx, queued)
            runs[queued].append(run)
            print(
                f"  backlog rep {rep + 1}, {queued:,} queued: first {args.window:,} at "
                f"{run['first_rate']:,.0f}/s (steady {run['steady_rate']:,.0f}/s), "
                f"{run['still_queued']:,.0f} still queued; bulk enqueue {run['enqueue_s']:.2f} s",
                flush=True,
            )
    small, big = runs[args.window], runs[args.backlog]
    table = Table(
        f"Backlog on {args.broker}: first {args.window:,} tasks drained by {args.workers} workers, "
        f"tasks/s (median of {args.reps})" + sizes_note(args, "window", "backlog"),
        ["metric", f"{args.window:,} queued", f"{args.backlog:,} queued", "ratio"],
    )
    summary: dict[str, float] = {}
    for key, label in (
        ("first_rate", f"first {args.window:,}, from 'running.'"),
        ("steady_rate", f"steady, tasks {max(1, args.window // 10):,}-{args.window:,}"),
    ):
        base, scaled = median([r[key] for r in small]), median([r[key] for r in big])
        summary[key] = ratio(scaled, base)
        table.add(label, fmt_num(base), fmt_num(scaled), fmt_ratio(summary[key]))
    table.add(
        "still queued at the end",
        fmt_num(median([r["still_queued"] for r in small])),
        fmt_num(median([r["still_queued"] for r in big])),
        "",
    )
    table.notes.append(
        "both queued with async_tasks before the cluster starts; 'still queued' is "
        "queue_size() when the window's last result was saved (in-flight tasks are not queued)"
    )
    table.notes.append("ratio = with backlog / without; below 1 means the backlog slows the drain")
    ctx.tables.append(table)
    ctx.results["backlog"] = {"window": args.window, "backlog": args.backlog, "small": small, "big": big}
    ctx.check(
        f"drain rate, {args.backlog:,} vs {args.window:,} queued",
        f"{summary['first_rate']:.3f}x",
        ">= 0.90x",
        summary["first_rate"] >= 0.90,
    )


@dataclass
class Probe:
    """A stored result whose id is looked up, and the value it must return."""

    task_id: str
    value: int


def fill_meta(task_id: str) -> ResultMeta:
    """The indexed fields of one result of the fill (a success that just stopped)."""
    now = time.time()
    return ResultMeta(
        id=task_id, name="filler", func="math.floor", group=None, success=True,
        started=now - 0.5, stopped=now, attempts=1, cluster="default",
    )  # fmt: skip


def fill_store(config: qframe.Config, count: int, probes: int, threads: int = 2) -> tuple[list[Probe], float]:
    """Save ``count`` results straight through the store driver, 1,000 per ``save_many``.

    ``probes`` of them carry their own decodable record (``result`` returns ``i + 1``),
    spread evenly over the fill; the rest share one encoded record (any valid blob will
    do for them). Two threads overlap building a batch with Redis running the previous
    one. Returns the probes and the fill's seconds.
    """
    codec = result_codec([config.secret_key or SECRET, *config.secret_key_fallbacks], config)

    def record(meta: Any, value: int) -> bytes:
        result = TaskResult(
            meta.id, meta.name, meta.func, (value,), {}, value + 1, True,
            meta.started, meta.stopped, meta.attempts, meta.cluster, meta.group,
        )  # fmt: skip
        return codec.encode(result.to_dict())

    filler = record(fill_meta("filler"), 0)
    batches = max(1, math.ceil(count / 1000))
    probe_at = {min(count - 1, i * count // probes) for i in range(probes)} if count else set()
    found: list[Probe] = []
    local = threading.local()
    stores: list[Any] = []
    lock = threading.Lock()

    def save_batch(batch: int) -> None:
        store = getattr(local, "store", None)
        if store is None:
            store = local.store = make_store(config)
            with lock:
                stores.append(store)
        items = []
        for position in range(batch * 1000, min(count, (batch + 1) * 1000)):
            meta = fill_meta(os.urandom(16).hex())
            if position in probe_at:
                items.append((meta, record(meta, position)))
                with lock:
                    found.append(Probe(meta.id, position + 1))
            else:
                items.append((meta, filler))
        store.save_many(items)

    began = time.perf_counter()
    pool = ThreadPoolExecutor(threads)
    try:
        for _ in pool.map(save_batch, range(batches)):
            pass
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an alarm: only the running batches
        for store in stores:
            store.close()
    return found, time.perf_counter() - began


def server_pid(address: RedisAddress) -> int:
    """The process id of the Redis server, from INFO."""
    info = redis_command(address, ("INFO", "server"))[0].decode(errors="replace")
    return int(next(line.split(":", 1)[1] for line in info.splitlines() if line.startswith("process_id:")))


def measure_lookup(ctx: Context) -> None:
    """``result(task_id)`` with ``--results-base`` results stored vs ``--results``.

    The two stores live in two databases of the same server and their calls are
    interleaved one by one (in random order), so the noise of a shared machine falls on
    both alike.
    """
    args = ctx.args
    sizes = {"base": (SMALL_DB, args.results_base), "big": (BIG_DB, args.results)}
    clients: dict[str, qframe.Client] = {}
    probes: dict[str, list[Probe]] = {}
    times: dict[str, list[float]] = {"base": [], "big": []}
    fill_s: dict[str, float] = {}
    try:
        for name, (db, count) in sizes.items():
            ctx.reset(db)
            env = ctx.env(db)
            config = qframe.load_config(environ=env, cwd=TASKS_DIR)
            probes[name], fill_s[name] = fill_store(config, count, min(args.probes, count))
            clients[name] = make_client(env)
            stored = clients[name].store.tally().successes
            print(
                f"  filled {stored:,} results in {fill_s[name]:.1f} s "
                f"({count / fill_s[name]:,.0f}/s); {ctx.args.broker} uses {ctx.backend.used_memory()}",
                flush=True,
            )
        rng = random.Random(1)
        order = list(sizes)
        warm_up = 100
        for call in range(warm_up + args.lookups):
            rng.shuffle(order)
            for name in order:
                probe = rng.choice(probes[name])
                began = time.perf_counter()
                value = clients[name].result(probe.task_id)
                elapsed = time.perf_counter() - began
                if value != probe.value:
                    raise RuntimeError(f"result({probe.task_id}) = {value!r}, expected {probe.value}")
                if call >= warm_up:
                    times[name].append(elapsed * 1e6)
    finally:
        for client in clients.values():
            client.close()
        for db, _ in sizes.values():  # a million results take Redis seconds to free
            ctx.reset(db, timeout=120)
    table = Table(
        f"Result lookup on {args.broker}: qframe.result(task_id) of an existing id, no wait, "
        f"microseconds ({len(times['base']):,} calls each)" + sizes_note(args, "results", "lookups"),
        ["metric", f"{args.results_base:,} stored", f"{args.results:,} stored", "ratio"],
    )
    stats: dict[str, float] = {}
    for label, q in (("median", 50.0), ("p95", 95.0), ("p99", 99.0)):
        base, big = percentile(times["base"], q), percentile(times["big"], q)
        stats[label] = ratio(big, base)
        table.add(f"{label} us", fmt_num(base, 1), fmt_num(big, 1), fmt_ratio(stats[label]))
    table.add(
        "fill, results/s",
        fmt_num(args.results_base / fill_s["base"]),
        fmt_num(args.results / fill_s["big"]),
        "",
    )
    table.notes.append(
        f"filled through make_store(config).save_many in batches of 1,000 (no task ran); "
        f"{min(args.probes, args.results_base)} / {min(args.probes, args.results)} ids looked up at random, "
        "decoded and checked; calls to the two stores interleaved one by one after 100 warm-up calls each"
    )
    ctx.tables.append(table)
    ctx.results["lookup"] = {
        "sizes": {name: count for name, (_, count) in sizes.items()},
        "fill_s": fill_s,
        "us": times,
    }
    ctx.check(
        f"result() median, {args.results:,} vs {args.results_base:,} stored",
        f"{stats['median']:.3f}x",
        "<= 1.10x (*)",
        stats["median"] <= 1.10,
    )


def measure_drift(ctx: Context) -> None:
    """RSS of every cluster process after 10% and at 100% of ``--drift-tasks`` tasks."""
    args = ctx.args
    tasks = args.drift_tasks
    env = ctx.env(QFRAME_RECYCLE="0")
    checkpoints = [math.ceil(tasks * k / 10) for k in range(1, 11)]
    snapshots: dict[int, dict[str, Memory]] = {}
    ctx.reset()
    client = make_client(env)
    submitted = 0
    try:
        with ctx.cluster(env, "drift") as cluster:
            cluster.start(timeout=30)
            began = time.monotonic()

            def feed_and_sample(now: float, done: int) -> None:
                # keep at most two chunks queued ahead of the workers
                nonlocal submitted
                while submitted < tasks and submitted - done < 2 * args.chunk:
                    count = min(args.chunk, tasks - submitted)
                    client.async_tasks(TASK, [(x,) for x in range(submitted, submitted + count)])
                    submitted += count
                for mark in checkpoints:
                    if done >= mark and mark not in snapshots:
                        snapshots[mark] = cluster.memory()
                        print(
                            f"  drift {done:,}/{tasks:,} done: total RSS "
                            f"{sum(m.rss for m in snapshots[mark].values()) / MIB:.1f} MiB",
                            flush=True,
                        )

            ctx.wait(
                client, cluster, tasks, began + 60 + tasks / ctx.backend.pace.drain, feed_and_sample, 0.02
            )
            elapsed = time.monotonic() - began
    finally:
        client.close()
        ctx.reset()
    first, middle, last = snapshots[checkpoints[0]], snapshots[checkpoints[4]], snapshots[checkpoints[-1]]
    table = Table(
        f"RSS drift on {args.broker} over {tasks:,} tasks, {args.workers} workers, QFRAME_RECYCLE=0 "
        "(workers never replaced), MiB" + sizes_note(args, "drift_tasks", "chunk"),
        ["process", "pid", "after 10%", "at 50%", "at 100%", "drift"],
    )
    drifts: dict[str, float] = {}
    replaced = []
    for role in sorted(set(first) | set(last), key=role_key):
        a, m, b = first.get(role), middle.get(role), last.get(role)
        if a is None or b is None or a.pid != b.pid:
            replaced.append(role)
        drift = (b.rss / a.rss - 1) * 100 if a and b else math.nan
        drifts[role] = drift
        table.add(
            role,
            str(b.pid if b else a.pid if a else "?"),
            f"{a.rss / MIB:.1f}" if a else "-",
            f"{m.rss / MIB:.1f}" if m else "-",
            f"{b.rss / MIB:.1f}" if b else "-",
            f"{drift:+.1f}%",
        )
    for kind in KINDS:
        a_sum, m_sum, b_sum = total(first, kind), total(middle, kind), total(last, kind)
        table.add(
            f"total {kind.upper()}", "", f"{a_sum / MIB:.1f}", f"{m_sum / MIB:.1f}", f"{b_sum / MIB:.1f}",
            f"{(b_sum / a_sum - 1) * 100:+.1f}%",
        )  # fmt: skip
    table.notes.append(
        f"{tasks:,} tasks in {elapsed:.1f} s ({tasks / elapsed:,.0f}/s), fed with async_tasks in "
        f"chunks of {args.chunk:,}; drift = RSS at 100% / RSS after 10% - 1; "
        + ("no process was replaced" if not replaced else f"REPLACED or missing: {', '.join(replaced)}")
    )
    ctx.tables.append(table)
    ctx.results["drift"] = {
        "tasks": tasks,
        "seconds": elapsed,
        "snapshots": {mark: {r: vars(m) for r, m in snap.items()} for mark, snap in snapshots.items()},
    }
    worst = max(drifts, key=lambda r: drifts[r] if math.isfinite(drifts[r]) else math.inf)
    ctx.check(
        f"RSS drift, {tasks:,} tasks (worst process)",
        f"{drifts[worst]:+.1f}% ({worst})",
        "<= 5%",
        all(math.isfinite(d) and d <= 5.0 for d in drifts.values()) and not replaced,
    )


def measure_budget(ctx: Context) -> None:
    """CPU time per task of each cluster process while it drains a queue (user + system).

    ``--budget-tasks`` are queued before the cluster starts, with ``recycle = 0`` so no
    worker is replaced mid-run; the CPU times are taken when 10% of the tasks are saved and
    again at the end, so start-up is left out. The producer only polls the success count.
    """
    args = ctx.args
    count = args.budget_tasks
    env = ctx.env(QFRAME_RECYCLE="0")
    ctx.reset()
    client = make_client(env)
    marks: list[tuple[float, int, dict[str, float]]] = []

    server = ctx.backend.server_processes()
    server_roles = {role for role, _ in server}

    def cpu(cluster: ClusterProcess) -> dict[str, float]:
        times: dict[str, float] = {}
        for role, process in [*cluster.processes(), *server]:
            with contextlib.suppress(psutil.NoSuchProcess):
                used = process.cpu_times()
                times[role] = used.user + used.system
        return times

    try:
        enqueue_bulk(client, 0, count)
        with ctx.cluster(env, "budget") as cluster:
            cluster.start(timeout=30)

            def mark(now: float, done: int) -> None:
                if not marks and done >= count // 10:
                    marks.append((now, done, cpu(cluster)))

            ctx.wait(
                client, cluster, count, time.monotonic() + 60 + count / (2 * ctx.backend.pace.drain), mark
            )
            marks.append((time.monotonic(), count, cpu(cluster)))
    finally:
        client.close()
        ctx.reset()
    (t0, n0, first), (t1, n1, last) = marks[0], marks[-1]
    tasks = n1 - n0
    table = Table(
        f"Per-task CPU budget on {args.broker}: tasks {n0:,}-{n1:,} of {count:,} queued, "
        f"{args.workers} workers, recycle 0" + sizes_note(args, "budget_tasks"),
        ["process", "CPU µs per task", "share of one core"],
    )
    budget: dict[str, float] = {}
    for role in sorted(last, key=role_key):
        used = last[role] - first.get(role, 0.0)
        budget[role] = used / tasks * 1e6
        table.add(role, f"{budget[role]:.1f}", f"{used / (t1 - t0):.0%}")
    cluster_total = sum(v for role, v in budget.items() if role not in server_roles)
    table.add("all cluster processes", f"{cluster_total:.1f}", "")
    table.notes.append(f"drain rate over the window: {tasks / (t1 - t0):,.0f} tasks/s")
    if ctx.backend.server_note():
        table.notes.append(ctx.backend.server_note())
    ctx.tables.append(table)
    ctx.results["budget"] = {"tasks": tasks, "rate": tasks / (t1 - t0), "us_per_task": budget}
    ctx.check("drain rate with the budget measured", f"{tasks / (t1 - t0):,.0f}/s", "-", None)


MEASURE: dict[str, Callable[[Context], None]] = {
    "enqueue": measure_enqueue,
    "footprint": measure_footprint,
    "backlog": measure_backlog,
    "lookup": measure_lookup,
    "drift": measure_drift,
    "budget": measure_budget,
}


def limit_of(name: str, args: argparse.Namespace, pace: Pace) -> float:
    """The hard time limit of a whole measurement, in seconds, at the broker's slowest ``pace``."""
    limits = {
        "enqueue": 60 + args.reps * (args.bulk + 10 * args.single) / (2.5 * pace.enqueue),
        "footprint": 60 + args.startup_reps * (45 + args.idle),
        "backlog": 60
        + args.reps * (2 * 150 + (args.backlog + args.window) / pace.enqueue + 2 * args.window / pace.drain),
        "lookup": 120 + (args.results + args.results_base) / pace.fill + args.lookups / pace.lookup,
        "drift": 240 + args.drift_tasks / (0.6 * pace.drain),
        "budget": 120 + args.budget_tasks / pace.enqueue + args.budget_tasks / (2 * pace.drain),
    }
    return float(limits[name])


# --------------------------------------------------------------------------- main


BROKERS = ("redis", "sqlite", "sqs", "mongo", "orm")

#: Sizes whose default depends on the broker: the Redis default (SQLite's and the orm's too),
#: then what differs where the server is a Python process on the same cores whose calls
#: cost more the more it holds, so that a run takes a few minutes: moto's SendMessage and
#: ReceiveMessage walk every message of the queue, and SecantusDB scans the queue's and the
#: results' documents (see bench/README.md).
SIZE_DEFAULTS: dict[str, dict[str, int]] = {
    "redis": {
        "bulk": 50_000, "single": 5_000, "window": 5_000, "backlog": 100_000, "results": 1_000_000,
        "results_base": 1_000, "lookups": 5_000, "drift_tasks": 200_000, "chunk": 10_000,
        "budget_tasks": 40_000,
    },
    "sqs": {
        "bulk": 1_000, "single": 200, "window": 200, "backlog": 2_000, "drift_tasks": 1_000,
        "chunk": 100, "budget_tasks": 500,
    },
    "mongo": {
        "bulk": 5_000, "single": 300, "window": 500, "backlog": 5_000, "results": 10_000,
        "lookups": 300, "drift_tasks": 2_000, "chunk": 200, "budget_tasks": 1_000,
    },
}  # fmt: skip


def size_default(broker: str, option: str) -> int:
    """The default of size ``option`` (``window``, ``backlog``, ...) on ``broker``."""
    return SIZE_DEFAULTS.get(broker, {}).get(option, SIZE_DEFAULTS["redis"][option])


def size_help(option: str, what: str) -> str:
    """``what`` and the defaults of ``option`` on every broker, e.g. ``(5000; sqs, mongo: 1000)``."""
    base = SIZE_DEFAULTS["redis"][option]
    others: dict[int, list[str]] = {}
    for broker in BROKERS:
        value = size_default(broker, option)
        if value != base:
            others.setdefault(value, []).append(broker)
    extra = "".join(f"; {', '.join(names)}: {value}" for value, names in others.items())
    return f"{what} (default {base}{extra})"


def sizes_note(args: argparse.Namespace, *options: str) -> str:
    """``" (--window 1,000, --backlog 20,000: the sqs defaults)"`` for the options that took the
    broker's own default, else ``""``."""
    mine = [o for o in options if o in args.broker_defaults]
    if not mine:
        return ""
    given = ", ".join(f"--{o.replace('_', '-')} {getattr(args, o):,}" for o in mine)
    return f" ({given}: the {args.broker} defaults)"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        default=",".join(MEASUREMENTS),
        help=f"comma list of {', '.join(MEASUREMENTS)} (default all)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        default="redis",
        help="the broker and store measured: qframe-redis (default), the embedded SQLite, qframe-sqs "
        "on moto_server (results in SQLite), qframe-mongo on SecantusDB (its mongo store) or "
        "qframe-django's orm on PostgreSQL; each server is started here and killed at the end. "
        "Sizes not given default per broker (below)",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions of enqueue and backlog (default 3)")
    parser.add_argument("--bulk", type=int, help=size_help("bulk", "tasks in the one async_tasks call"))
    parser.add_argument(
        "--single", type=int, help=size_help("single", "async_task calls for the single rate")
    )
    parser.add_argument(
        "--startup-reps", type=int, default=3, help="cluster starts for footprint (default 3)"
    )
    parser.add_argument("--idle", type=float, default=1.0, help="idle seconds before sampling memory (1)")
    parser.add_argument("--window", type=int, help=size_help("window", "tasks drained per backlog run"))
    parser.add_argument("--backlog", type=int, help=size_help("backlog", "queued tasks of the big backlog"))
    parser.add_argument("--results", type=int, help=size_help("results", "results stored for the big lookup"))
    parser.add_argument("--results-base", type=int, help=size_help("results_base", "results of the baseline"))
    parser.add_argument("--lookups", type=int, help=size_help("lookups", "timed result() calls per size"))
    parser.add_argument("--probes", type=int, default=500, help="distinct ids looked up per size (500)")
    parser.add_argument(
        "--drift-tasks", type=int, help=size_help("drift_tasks", "tasks of the RSS drift run")
    )
    parser.add_argument("--chunk", type=int, help=size_help("chunk", "async_tasks chunk of the drift feed"))
    parser.add_argument(
        "--budget-tasks", type=int, help=size_help("budget_tasks", "tasks drained by the CPU budget run")
    )
    parser.add_argument("--json", dest="json_path", default=None, help="write raw numbers here")
    parser.add_argument("--plain", action="store_true", help="plain-text tables")
    parser.add_argument("--keep", action="store_true", help="keep the cluster logs")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the traceback of a failure")
    args = parser.parse_args(argv)
    args.broker_defaults = set()
    for option in SIZE_DEFAULTS["redis"]:
        if getattr(args, option) is None:
            setattr(args, option, size_default(args.broker, option))
            if getattr(args, option) != SIZE_DEFAULTS["redis"][option]:
                args.broker_defaults.add(option)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"unknown measurements: {', '.join(sorted(unknown))}")
    positive = (
        "workers", "reps", "bulk", "single", "startup_reps", "window",
        "results", "results_base", "budget_tasks",
    )  # fmt: skip
    if min(getattr(args, name) for name in positive) < 1 or min(args.lookups, args.probes, args.chunk) < 1:
        parser.error("counts must be at least 1")
    if args.backlog < args.window:
        parser.error("--backlog must be at least --window")
    if args.drift_tasks < 10:
        parser.error("--drift-tasks must be at least 10")
    return args


def run_measurements(ctx: Context, failed: list[str]) -> None:
    """Run every measurement asked for, in order; the names of those that failed go to ``failed``."""
    args = ctx.args
    for name in MEASUREMENTS:
        if name not in args.only:
            continue
        reason = ctx.backend.skip(name)
        if reason is not None:
            print(f"[{name}] skipped on {args.broker}: {reason}", flush=True)
            ctx.check(name, "skipped", "-", None)
            continue
        limit = limit_of(name, args, ctx.backend.pace)
        print(f"[{name}] (limit {limit:.0f} s)", flush=True)
        began = time.monotonic()
        try:
            with hard_timeout(limit, name):
                MEASURE[name](ctx)
        except Exception as exc:
            failed.append(name)
            print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
            if args.verbose:
                traceback.print_exc()
            ctx.check(name, "failed", "-", False)
        print(f"  [{name}] {time.monotonic() - began:.1f} s", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements, print every table and the targets; 0 when all ran."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="qframe-scale-"))
    failed: list[str] = []
    ctx: Context | None = None
    try:
        with backend_for(args.broker, args.workers, workdir) as backend:
            ctx = Context(backend, args, workdir)
            print(
                f"qframe {qframe.__version__} scale benchmark on {backend.describe()}; "
                f"Python {platform.python_version()}; {os.cpu_count()} CPUs; {args.workers} workers; "
                f"measurements: {', '.join(args.only)}",
                flush=True,
            )
            run_measurements(ctx, failed)
    except ServerUnavailable as exc:  # only its start raises it: every measurement fails with one line
        if ctx is not None:
            raise
        ctx = Context(Backend(args.workers, workdir), args, workdir)
        first, _, rest = str(exc).partition("\n")
        for name in (name for name in MEASUREMENTS if name in args.only):
            failed.append(name)
            print(f"[{name}] FAILED: the {args.broker} server did not start: {first.rstrip(':')}", flush=True)
            ctx.check(name, "failed (no server)", "-", False)
        if rest:
            print("  the server's log ends with:\n" + "\n".join(f"    {line}" for line in rest.splitlines()))
    keep = args.keep or bool(failed)
    plain = args.plain or not sys.stdout.isatty()
    for table in ctx.tables:
        print()
        table.print(force_plain=plain)
    summary = Table("Targets", ["measurement", "value", "target", "met"])
    for what, value, target, met in ctx.checks:
        summary.add(what, value, target, "-" if met is None else "yes" if met else "NO")
    if "lookup" in args.only:
        summary.notes.append("(*) no target was set for lookups; flat within 10% is taken as the goal")
    summary.notes.append(f"total time {time.monotonic() - started:.0f} s")
    if keep:
        summary.notes.append(f"cluster logs: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    summary.print(force_plain=plain)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(ctx.results, indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
