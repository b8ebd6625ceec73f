"""MongoDB URLs, the per-process client and error translation shared by the broker and the store.

A URL is ``mongodb://[user:password@]host[:port][,host...]/database[?options]`` or
``mongodb+srv://...``; the database comes from the URL's path (``qframe`` when it names
none). Keyword options that are not the driver's own (:data:`DRIVER_OPTIONS`) go to
:class:`pymongo.MongoClient` unchanged. The defaults bound every call: a 5 s server
selection timeout, a 2 s connect timeout and a 10 s socket timeout, so a call during an
outage raises :class:`~qframe.errors.BrokerError` (or :class:`~qframe.errors.StoreError`)
within seconds instead of hanging.

pymongo is not fork-safe: a :class:`Link` opens its client on first use and opens a new
one when it finds itself in another process than the one that opened it (a forked
worker never uses its parent's sockets).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pymongo
import pymongo.errors
from pymongo import uri_parser
from pymongo.collection import Collection
from pymongo.database import Database

from qframe.errors import BrokerError, ConfigError, QFrameError

#: Options the driver consumes itself; everything else goes to pymongo.
DRIVER_OPTIONS = frozenset({"prefix", "result_ttl", "change_streams", "poll", "save_limit_per"})

DEFAULT_PREFIX = "qframe"
DEFAULT_DATABASE = "qframe"

#: pymongo keyword options qframe sets unless given (milliseconds).
DEFAULT_CLIENT_OPTIONS: Mapping[str, Any] = {
    "serverSelectionTimeoutMS": 5000,
    "connectTimeoutMS": 2000,
    "socketTimeoutMS": 10000,
}

#: Errors that mean "the server could not be reached or did not answer in time".
UNREACHABLE: tuple[type[BaseException], ...] = (
    pymongo.errors.ConnectionFailure,
    pymongo.errors.ServerSelectionTimeoutError,
)

Document = dict[str, Any]


def now_ms() -> int:
    """The current time as integer epoch milliseconds (every time field is stored this way)."""
    return time.time_ns() // 1_000_000


def redacted(url: str | None) -> str:
    """``url`` with its password replaced by ``***``, for log lines and errors."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    hosts = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{hosts}"))


def database_name(url: str) -> str:
    """The database a URL names in its path; :data:`DEFAULT_DATABASE` when it names none.

    Raises :class:`~qframe.errors.ConfigError` for a URL pymongo cannot parse; a
    ``mongodb+srv://`` URL is not resolved here (no DNS lookup before the first call).
    """
    if not url.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError(f"mongo URL {redacted(url)!r} must start with mongodb:// or mongodb+srv://")
    if url.startswith("mongodb+srv://"):  # parsing it would resolve DNS records
        name = urlsplit(url).path.lstrip("/")
        if "/" in name or " " in name:
            raise ConfigError(f"mongo URL {redacted(url)!r} has a bad database name {name!r}")
        return unquote(name) or DEFAULT_DATABASE
    try:
        parsed = uri_parser.parse_uri(url, validate=False)
    except (pymongo.errors.InvalidURI, pymongo.errors.ConfigurationError, ValueError) as exc:
        raise ConfigError(f"mongo URL {redacted(url)!r} is malformed: {_detail(exc)}") from None
    return str(parsed.get("database") or DEFAULT_DATABASE)


def client_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The pymongo keyword options among ``options``, with qframe's bounded defaults filled in."""
    kwargs = {k: v for k, v in options.items() if k not in DRIVER_OPTIONS}
    for name, value in DEFAULT_CLIENT_OPTIONS.items():
        kwargs.setdefault(name, value)
    kwargs.setdefault("appname", "qframe")
    return kwargs


class Link:
    """The client and database of one broker or store, opened lazily in each process."""

    def __init__(
        self, url: str | None, options: Mapping[str, Any], what: str, error: type[QFrameError] = BrokerError
    ) -> None:
        self.url = url or "mongodb://localhost:27017/qframe"
        self.what = what
        self.error = error
        self.database_name = database_name(self.url)
        self._kwargs = client_options(options)
        self._client: pymongo.MongoClient[Document] | None = None
        self._pid = 0

    @property
    def client(self) -> pymongo.MongoClient[Document]:
        """This process's client (a new one after a fork; the parent's sockets are never used)."""
        if self._client is None or self._pid != os.getpid():
            with self.errors():
                try:
                    self._client = pymongo.MongoClient(self.url, connect=False, **self._kwargs)
                except (TypeError, ValueError) as exc:  # a bad option value
                    raise ConfigError(f"{self.what} at {redacted(self.url)}: {_detail(exc)}") from None
            self._pid = os.getpid()
        return self._client

    @property
    def db(self) -> Database[Document]:
        """The database named in the URL."""
        return self.client[self.database_name]

    def collection(self, name: str) -> Collection[Document]:
        """A collection of the database."""
        return self.db[name]

    def ping(self) -> bool:
        """Run the server's ``ping`` command (a round trip, not a cached answer)."""
        with self.errors():
            reply = self.client.admin.command("ping")
        return bool(reply.get("ok"))

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn pymongo errors raised inside the block into one-line :attr:`error` exceptions."""
        try:
            yield
        except UNREACHABLE as exc:
            raise self.error(f"{self.what} at {redacted(self.url)} is unreachable: {_detail(exc)}") from exc
        except pymongo.errors.ConfigurationError as exc:
            raise ConfigError(f"{self.what} at {redacted(self.url)}: {_detail(exc)}") from exc
        except pymongo.errors.PyMongoError as exc:
            raise self.error(f"{self.what} at {redacted(self.url)} failed: {_detail(exc)}") from exc

    def close(self) -> None:
        """Close this process's client (a client inherited through a fork is dropped, not closed)."""
        client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            client.close()


def _detail(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
