"""The qframe-django ``orm`` broker's raw speed: enqueue, claim and ack on SQLite and PostgreSQL.

    python bench/django_orm.py --messages 5000 --batch 100            # SQLite, and PostgreSQL if installed

PostgreSQL is started from the installed binaries (as qframe-django's tests do) on a free
loopback port and stopped at the end. Prints messages per second for ``enqueue_many`` and
for claim + ``ack_many`` in batches, median of ``--reps`` runs. Needs qframe-django and psycopg.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "qframe-django" / "tests"))


def configure(databases: dict[str, Any]) -> None:
    """Set Django up with the app and ``databases``, and create the tables."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    settings.configure(DATABASES=databases, INSTALLED_APPS=["qframe_django"], USE_TZ=True, SECRET_KEY="bench")
    django.setup()
    for alias in databases:
        call_command("migrate", database=alias, verbosity=0)


def run(alias: str, messages: int, batch: int) -> tuple[float, float]:
    """One run: (enqueued per second, claimed and acked per second)."""
    from qframe_django.broker import OrmBroker

    broker = OrmBroker(alias, f"bench-{time.monotonic_ns()}", lease=60)
    payloads = [bytes(200) for _ in range(messages)]
    start = time.perf_counter()
    for i in range(0, messages, batch):
        broker.enqueue_many(payloads[i : i + batch])
    enqueued = messages / (time.perf_counter() - start)
    start, done = time.perf_counter(), 0
    while done < messages:
        got = broker.dequeue(batch)
        broker.ack_many([m.ack_id for m in got])
        done += len(got)
    consumed = messages / (time.perf_counter() - start)
    broker.purge()
    broker.close()
    return enqueued, consumed


def main() -> None:
    """Parse the options, start PostgreSQL if it is installed, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    options = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="qframe-bench-orm-"))
    databases: dict[str, Any] = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(directory / "bench.sqlite3"),
                    "OPTIONS": {"timeout": 20}},
    }  # fmt: skip
    from pgserver import PostgresServer, postgres_bin

    server = None
    if postgres_bin() is not None:
        server = PostgresServer(postgres_bin()).start()  # type: ignore[arg-type]
        databases["pg"] = {"ENGINE": "django.db.backends.postgresql", "NAME": "postgres", "USER": "postgres",
                           "HOST": "127.0.0.1", "PORT": str(server.port)}  # fmt: skip
    try:
        configure(databases)
        print(f"{options.messages} messages of 200 bytes, batches of {options.batch}, ", end="")
        print(f"median of {options.reps}")
        print(f"{'database':<10} {'enqueue/s':>10} {'claim+ack/s':>12}")
        for alias in databases:
            runs = [run(alias, options.messages, options.batch) for _ in range(options.reps)]
            enqueue = statistics.median(r[0] for r in runs)
            consume = statistics.median(r[1] for r in runs)
            print(f"{alias:<10} {enqueue:>10.0f} {consume:>12.0f}")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
