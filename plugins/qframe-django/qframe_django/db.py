"""One database alias as the ORM drivers use it: Django set up, errors mapped, locks retried.

Every driver call goes through :meth:`Database.run`: a database error becomes the
driver's one-line :class:`~qframe.errors.QFrameError` (and the broken connection is
dropped, so the next call reconnects after a server restart); SQLite's "database is
locked" is retried a bounded number of times first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

from qframe.errors import ConfigError, QFrameError

T = TypeVar("T")

#: Attempts of one call while SQLite answers "database is locked" (besides its busy timeout).
LOCK_RETRIES = 20
#: Longest pause between two of those attempts, in seconds.
LOCK_PAUSE = 0.2


def ensure_django() -> None:
    """Set Django up in a process that has not (a spawned cluster process, a script)."""
    from django.apps import apps

    if apps.ready:
        return
    from django.conf import settings

    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ConfigError(
            "the orm driver needs Django: set DJANGO_SETTINGS_MODULE, or run 'manage.py qcluster'"
        )
    import django

    django.setup()


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Database:
    """A Django database alias for one driver instance; failures raise ``error``."""

    def __init__(self, alias: str | None, error: type[QFrameError]) -> None:
        ensure_django()
        from django.db import connections

        self.alias = alias or "default"
        self.error = error
        if self.alias not in connections.settings:
            raise ConfigError(
                f"database alias '{self.alias}' is not in settings.DATABASES "
                f"(aliases: {', '.join(connections.settings) or 'none'})"
            )
        self.vendor = connections[self.alias].vendor
        #: Whether claims can use ``SELECT ... FOR UPDATE SKIP LOCKED``.
        self.skip_locked = bool(connections[self.alias].features.has_select_for_update_skip_locked)

    def run(self, what: str, call: Callable[[], T]) -> T:
        """``call()``, with SQLite lock retries and database errors mapped to ``self.error``."""
        from django.db import DatabaseError, InterfaceError, OperationalError

        pause = 0.005
        for attempt in range(LOCK_RETRIES):
            try:
                return call()
            except OperationalError as exc:
                if self._locked(exc) and attempt < LOCK_RETRIES - 1:
                    time.sleep(pause)
                    pause = min(pause * 2, LOCK_PAUSE)
                    continue
                self.drop_connection()
                raise self.error(f"{what} on database '{self.alias}' failed: {one_line(exc)}") from exc
            except (InterfaceError, DatabaseError) as exc:
                self.drop_connection()
                raise self.error(f"{what} on database '{self.alias}' failed: {one_line(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _locked(self, exc: Exception) -> bool:
        return self.vendor == "sqlite" and "locked" in str(exc)

    def drop_connection(self) -> None:
        """Close this thread's connection (outside a transaction), so the next call reconnects."""
        from django.db import connections

        connection = connections[self.alias]
        if not connection.in_atomic_block:
            try:
                connection.close()
            except Exception:
                connection.connection = None

    def close(self) -> None:
        """Close this thread's connection to the alias."""
        self.drop_connection()
