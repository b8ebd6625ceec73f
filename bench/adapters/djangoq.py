"""Django Q2: Redis broker, results saved by its monitor in the Django ORM (SQLite)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from adapters.base import PENDING, Adapter, python_module_cmd


class DjangoQAdapter(Adapter):
    """``manage.py qcluster`` with ``workers=N``; waits with ``django_q.tasks.result(id, wait=ms)``.

    Storing results in the ORM is Django Q2's design and is kept; the SQLite database is
    switched to WAL so the producer's reads do not block the monitor's writes.
    """

    name = "djangoq"

    def environment(self) -> dict[str, str]:
        """Settings module, its Redis URL and its SQLite file."""
        return {
            "DJANGO_SETTINGS_MODULE": "djangoq_settings",
            "BENCH_REDIS_URL": str(self.spec.redis_url),
            "BENCH_DJANGO_DB": str(self.workdir / "django.sqlite3"),
            "BENCH_WORKERS": str(self.spec.workers),
        }

    def prepare(self) -> None:
        """``django.setup()``, ``migrate`` and WAL mode, before the cluster starts."""
        import django
        from django.core.management import call_command
        from django.db import connection

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
        from django_q.tasks import async_task, result

        self.async_task = async_task
        self.result = result

    def worker_commands(self) -> list[list[str]]:
        """``django-admin qcluster`` (what ``manage.py qcluster`` runs)."""
        return [python_module_cmd("django", "qcluster")]

    def enqueue(self, x: int) -> Any:
        """``async_task("djangoq_tasks.inc", x)`` returns the task id."""
        return self.async_task("djangoq_tasks.inc", x)

    def check(self, handle: Any) -> Any:
        """``result(task_id)``: one ORM query, None while not saved."""
        value = self.result(handle)
        return PENDING if value is None else value

    def wait(self, handle: Any, timeout: float) -> Any:
        """``result(task_id, wait=ms)``: Django Q2 polls the ORM every 10 ms."""
        return self.result(handle, wait=int(timeout * 1000))

    def version(self) -> str:
        """Django Q2's version (and Django's)."""
        return f"{version('django-q2')} (Django {version('django')})"
