"""The Django ORM on PostgreSQL: qframe-django's ``orm`` broker against Django Q2's ORM broker.

Every run creates a database of its own, named after its work directory, on the harness's
PostgreSQL (``spec.server_url``), migrates it before the workers start and drops it after
they stopped. Both systems queue and keep their results in that database.
"""

from __future__ import annotations

import contextlib
import hashlib
from importlib.metadata import version
from typing import Any

from adapters.base import Adapter, python_module_cmd
from adapters.djangoq import DjangoQAdapter
from adapters.qframe import QframeAdapter


def run_database_url(adapter: Adapter) -> str:
    """``postgresql://.../<database of this run>`` on the harness's server."""
    name = "bench_" + hashlib.sha1(str(adapter.workdir).encode()).hexdigest()[:10]
    return f"{str(adapter.spec.server_url).rsplit('/', 1)[0]}/{name}"


def _admin(adapter: Adapter, statement: str) -> None:
    """Run ``statement`` (CREATE / DROP DATABASE) on the server's ``postgres`` database."""
    import psycopg

    with psycopg.connect(str(adapter.spec.server_url), autocommit=True) as connection:
        connection.execute(statement)


def _migrate() -> None:
    """``django.setup()`` and ``migrate`` on the run's database."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def _database(adapter: Adapter) -> str:
    return run_database_url(adapter).rsplit("/", 1)[1]


class QframeOrmAdapter(QframeAdapter):
    """``manage.py qcluster`` of qframe-django: the ``orm`` broker and store on PostgreSQL."""

    backends = ("orm",)

    def environment(self) -> dict[str, str]:
        """The settings module (``tasks/qframe_django_settings.py``) and its database."""
        return {
            "DJANGO_SETTINGS_MODULE": "qframe_django_settings",
            "BENCH_PG_URL": run_database_url(self),
            "QFRAME_NAME": self.queue(),
            "QFRAME_WORKERS": str(self.spec.workers),
        }

    def prepare(self) -> None:
        """Create and migrate the run's database; the producer is ``qframe_django.compat``'s client."""
        _admin(self, f'CREATE DATABASE "{_database(self)}"')
        _migrate()
        from qframe_django.compat import client

        self.client: Any = client()

    def worker_commands(self) -> list[list[str]]:
        """``django-admin qcluster --name bench --workers N`` (what ``manage.py qcluster`` runs)."""
        workers = str(self.spec.workers)
        return [python_module_cmd("django", "qcluster", "--name", self.queue(), "--workers", workers)]

    def close(self) -> None:
        """Close the client and Django's connections, then drop the run's database."""
        from django.db import connections

        self.client.close()
        connections.close_all()
        with contextlib.suppress(Exception):
            _admin(self, f'DROP DATABASE IF EXISTS "{_database(self)}" WITH (FORCE)')

    def version(self) -> str:
        """qframe's, qframe-django's and Django's versions."""
        return f"{version('qframe')} (qframe-django {version('qframe-django')}, Django {version('django')})"


class DjangoQOrmAdapter(DjangoQAdapter):
    """Django Q2's ``orm`` broker on PostgreSQL, results in the same database."""

    backends = ("orm",)

    def environment(self) -> dict[str, str]:
        """Django Q2's settings with the ORM broker on the run's PostgreSQL database."""
        return {
            **super().environment(),
            "BENCH_DJANGOQ_BROKER": "orm",
            "BENCH_PG_URL": run_database_url(self),
        }

    def prepare(self) -> None:
        """Create and migrate the run's database (no WAL switch: that is SQLite's)."""
        _admin(self, f'CREATE DATABASE "{_database(self)}"')
        _migrate()
        from django_q.tasks import async_task, result

        self.async_task = async_task
        self.result = result

    def close(self) -> None:
        """Close Django's connections, then drop the run's database."""
        from django.db import connections

        connections.close_all()
        with contextlib.suppress(Exception):
            _admin(self, f'DROP DATABASE IF EXISTS "{_database(self)}" WITH (FORCE)')

    def version(self) -> str:
        """Django Q2's, Django's and psycopg's versions."""
        return f"{version('django-q2')} (Django {version('django')}, psycopg {version('psycopg')})"
