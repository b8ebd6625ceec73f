"""Redis URLs, client construction and error translation shared by the broker and the store.

Accepted URLs:

* ``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS) and
  ``unix:///path/to/socket?db=0``: a single server, through ``redis.Redis.from_url``;
* ``redis+sentinel://[user:password@]host:port[,host:port]/service_name[/db]``: the
  master of ``service_name`` as the Sentinels report it (``rediss+sentinel://`` for TLS);
* ``redis+cluster://[user:password@]host:port[,host:port]`` (``rediss+cluster://`` for
  TLS), or any ``redis://`` URL with the option ``cluster=True``: a Redis Cluster.

Every keyword option that is not the driver's own (``prefix``, ``cluster``,
``result_ttl``) goes to redis-py unchanged, except ``decode_responses`` (always off:
payloads are bytes). The defaults bound every call: a 2 s connect
timeout, a 5 s socket timeout and a few retries with a capped exponential backoff, so a
call during an outage raises :class:`~qframe.errors.BrokerError` (the broker's calls) or
:class:`~qframe.errors.StoreError` (the store's) after a few seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import redis
import redis.exceptions
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.retry import Retry
from redis.sentinel import Sentinel

from qframe.errors import BrokerError, ConfigError, QFrameError

#: A connected client: a single server (also a Sentinel-managed master) or a cluster.
Client = redis.Redis | RedisCluster

#: Options the driver consumes itself; everything else is passed to redis-py.
DRIVER_OPTIONS = frozenset({"prefix", "cluster", "result_ttl"})

DEFAULT_PREFIX = "qframe"
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_REDIS_PORT = 6379

#: Errors that mean "the server could not be reached or did not answer in time".
UNREACHABLE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.RedisClusterException,
)


def default_retry() -> Retry:
    """A bounded retry policy: three attempts in all, backoff capped at half a second.

    redis-py retries :class:`~redis.exceptions.ConnectionError` and
    :class:`~redis.exceptions.TimeoutError` with it (the replacement of the deprecated
    ``retry_on_timeout=True``), so a short blip is hidden and an outage surfaces quickly.
    """
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2)


def redacted(url: str | None) -> str:
    """``url`` with its password replaced by ``***``, for log lines and errors."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    hosts = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


@dataclass(frozen=True)
class Target:
    """A parsed broker or store URL: what kind of deployment and how to reach it."""

    #: ``"single"``, ``"sentinel"`` or ``"cluster"``.
    kind: str
    #: The URL as given (for ``Redis.from_url``).
    url: str
    #: ``(host, port)`` pairs of the Sentinels or the cluster's startup nodes.
    hosts: tuple[tuple[str, int], ...] = ()
    #: The Sentinel service (master group) name.
    service: str = ""
    #: Keyword options parsed from the URL (db, username, password, ssl, query string).
    options: Mapping[str, Any] = field(default_factory=dict)


def _hosts(netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts: list[tuple[str, int]] = []
    for raw in netloc.rpartition("@")[2].split(","):
        item = raw.strip()
        if not item:
            continue
        if item.startswith("["):  # [::1]:6379
            host, _, after = item[1:].partition("]")
            port = after.lstrip(":")
        else:
            host, _, port = item.partition(":")
        try:
            hosts.append((unquote(host), int(port) if port else default_port))
        except ValueError:
            raise ConfigError(f"redis URL has a bad port in {item!r}") from None
    if not hosts:
        raise ConfigError("redis URL names no host")
    return tuple(hosts)


def _userinfo(netloc: str) -> dict[str, Any]:
    userinfo, at, _ = netloc.rpartition("@")
    if not at:
        return {}
    user, colon, password = userinfo.partition(":")
    options: dict[str, Any] = {}
    if user:
        options["username"] = unquote(user)
    if colon:
        options["password"] = unquote(password)
    return options


def parse_url(url: str, *, cluster: bool = False) -> Target:
    """Classify ``url`` (see the module docstring); raise ConfigError when it is malformed."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"redis URL {redacted(url)!r} has no scheme (e.g. redis://host:6379/0)")
    scheme = scheme.lower()
    netloc, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    options: dict[str, Any] = _userinfo(netloc)
    for name, value in parse_qsl(query):
        parser = cast("Callable[[str], Any] | None", URL_QUERY_ARGUMENT_PARSERS.get(name))
        try:
            options[name] = parser(value) if parser else value
        except (TypeError, ValueError):
            raise ConfigError(f"redis URL has a bad value for {name!r}") from None
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        parts = [unquote(p) for p in path.split("/") if p]
        if not parts:
            raise ConfigError("redis+sentinel URL needs a service name: redis+sentinel://host:26379/mymaster")
        if len(parts) > 1:
            try:
                options["db"] = int(parts[1])
            except ValueError:
                message = f"redis+sentinel URL has a bad database number {parts[1]!r}"
                raise ConfigError(message) from None
        if scheme == "rediss+sentinel":
            options["ssl"] = True
        return Target("sentinel", url, _hosts(netloc, DEFAULT_SENTINEL_PORT), parts[0], options)
    if scheme in ("redis+cluster", "rediss+cluster") or (cluster and scheme in ("redis", "rediss")):
        if scheme.startswith("rediss"):
            options["ssl"] = True
        return Target("cluster", url, _hosts(netloc, DEFAULT_REDIS_PORT), "", options)
    if scheme in ("redis", "rediss", "unix"):
        if cluster:
            raise ConfigError("a Redis Cluster is reached over TCP: use redis+cluster://host:port")
        return Target("single", url)
    raise ConfigError(
        f"unsupported redis URL scheme {scheme!r}: use redis://, rediss://, unix://, "
        "redis+sentinel:// or redis+cluster://"
    )


def split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``options`` into (the driver's own options, redis-py keyword options)."""
    own = {k: v for k, v in options.items() if k in DRIVER_OPTIONS}
    rest = {k: v for k, v in options.items() if k not in DRIVER_OPTIONS}
    return own, rest


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def connect(
    url: str | None,
    options: Mapping[str, Any],
    what: str = "redis",
    error: type[QFrameError] = BrokerError,
) -> Client:
    """Build a (lazily connecting where redis-py allows) client for ``url``.

    ``options`` are the driver's options; ``cluster=True`` selects Redis Cluster for a
    ``redis://`` URL. A cluster client connects here (it must read the slot map), so an
    unreachable cluster raises ``error`` (:class:`~qframe.errors.BrokerError` by default)
    from this call; ``what`` names the caller in error messages.
    """
    own, kwargs = split_options(options)
    cluster = _truthy(own.get("cluster", False))
    target = parse_url(url or "redis://localhost:6379/0", cluster=cluster)
    kwargs.setdefault("socket_connect_timeout", 2.0)
    kwargs.setdefault("socket_timeout", 5.0)
    kwargs.setdefault("retry", default_retry())
    kwargs["decode_responses"] = False  # payloads and blobs are bytes
    with translate_errors(target.url, what, error):
        if target.kind == "single":
            return redis.Redis.from_url(target.url, **kwargs)
        if target.kind == "sentinel":
            merged = {**target.options, **kwargs}
            sentinel_kwargs = merged.pop("sentinel_kwargs", None) or {
                k: merged[k] for k in ("socket_connect_timeout", "socket_timeout") if k in merged
            }
            sentinel_kwargs.setdefault("retry", default_retry())
            sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(target.hosts), sentinel_kwargs=sentinel_kwargs, **merged
            )
            master: redis.Redis = sentinel.master_for(target.service)  # type: ignore[no-untyped-call]
            return master
        merged = {**target.options, **kwargs}
        nodes = [
            ClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in target.hosts
        ]
        return RedisCluster(startup_nodes=nodes, **merged)


@contextlib.contextmanager
def translate_errors(
    url: str | None, what: str = "redis", error: type[QFrameError] = BrokerError
) -> Iterator[None]:
    """Turn redis-py errors raised inside the block into one-line ``error`` exceptions."""
    try:
        yield
    except UNREACHABLE as exc:
        raise error(f"{what} at {redacted(url)} is unreachable: {_detail(exc)}") from exc
    except redis.exceptions.RedisError as exc:
        raise error(f"{what} at {redacted(url)} failed: {_detail(exc)}") from exc


def _detail(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def block_cap(url: str | None, options: Mapping[str, Any], cap: float) -> float:
    """The longest blocking call (BLPOP) that stays well inside the socket timeout.

    The socket timeout comes from the URL's query string, else the options, else the
    5 s default; blocking for at most half of it (and at most ``cap``) never trips it.
    """
    query = dict(parse_qsl((url or "").partition("?")[2]))
    timeout = query.get("socket_timeout", options.get("socket_timeout", 5.0))
    if timeout is None or timeout == "None":
        return cap
    try:
        return max(0.01, min(cap, float(timeout) / 2))
    except (TypeError, ValueError):
        return cap
