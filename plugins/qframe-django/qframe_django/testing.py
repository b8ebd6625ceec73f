"""Helpers for tests of Django projects and of this plugin: ORM drivers in any process.

:class:`OrmStoreFactory` pickles (for spawned processes): in a process where Django is
not set up yet it configures Django with the given ``DATABASES`` before building the
store, so a child sees the parent's test database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qframe_django.store import OrmStore


def configure_django(databases: dict[str, Any]) -> None:
    """Set Django up with only this app and ``databases``, unless it is set up already."""
    from django.apps import apps

    if apps.ready:
        return
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES=databases, INSTALLED_APPS=["qframe_django"], USE_TZ=True, SECRET_KEY="test"
        )
    django.setup()


@dataclass(frozen=True)
class OrmStoreFactory:
    """``factory() -> OrmStore`` on ``alias``, usable in this process and in spawned ones."""

    alias: str
    databases: dict[str, Any] = field(default_factory=dict)

    def __call__(self, **options: Any) -> OrmStore:
        """A new store (Django configured first in a fresh process)."""
        configure_django(self.databases)
        return OrmStore(self.alias, **options)
