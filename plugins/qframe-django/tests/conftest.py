"""Fixtures of the qframe-django tests: a PostgreSQL server for the ``pg`` alias, the aliases.

The server starts once per session before pytest-django creates the test databases
(``django_db_modify_db_settings``) and is stopped at the end. Locally, without
PostgreSQL, the ``pg`` alias is dropped and its tests are skipped; under ``CI=true``
that is a failure (:func:`pgserver.require_postgres`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pgserver import PostgresServer, postgres_bin, require_postgres

ALIASES = ["default", "pg"]


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> Iterator[PostgresServer | None]:
    """The session's PostgreSQL server, or None locally when it is not installed."""
    from django.conf import settings

    if "pg" not in settings.DATABASES:
        yield None
        return
    if postgres_bin() is None:
        try:
            require_postgres()
        except pytest.skip.Exception:
            del settings.DATABASES["pg"]
            yield None
            return
    binaries = require_postgres()
    server = PostgresServer(binaries)
    try:
        server.start()
        settings.DATABASES["pg"]["PORT"] = str(server.port)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(postgres: PostgresServer | None) -> None:
    """Point the ``pg`` alias at the session's server before the test databases are made."""


@pytest.fixture(params=ALIASES)
def alias(request: pytest.FixtureRequest, postgres: PostgresServer | None) -> str:
    """Each database alias in turn: SQLite, then PostgreSQL."""
    from django.conf import settings

    name: str = request.param
    if name not in settings.DATABASES:
        pytest.skip("PostgreSQL is not installed")
    return name

