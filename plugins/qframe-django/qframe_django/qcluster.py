"""Django Q2's ``settings.Q_CLUSTER``, translated key by key into qframe options.

Every key either maps onto a qframe option (or a setting of this app) or yields a
warning that names it and says why it is ignored; nothing is silently dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

#: Q_CLUSTER keys whose value carries over unchanged under a qframe name.
RENAMED = {
    "name": "name",
    "cluster_name": "name",
    "workers": "workers",
    "timeout": "timeout",
    "retry": "lease",
    "recycle": "recycle",
    "max_attempts": "max_attempts",
    "queue_limit": "prefetch",
    "bulk": "bulk",
    "poll": "poll",
    "compress": "compress",
    "save_limit": "save_limit",
    "guard_cycle": "guard_cycle",
    "cpu_affinity": "cpu_affinity",
    "log_level": "log_level",
}

#: Keys that do nothing in qframe, with the reason the warning gives.
IGNORED = {
    "daemonize_workers": "qframe workers are never daemonic processes; tasks may start children",
    "cache": "qframe keeps statuses and results in its store, not in a Django cache",
    "cached": "pass cached= to async_task instead (a per-call option)",
    "django_redis": "give the redis broker a URL with 'redis' instead",
    "iron_mq": "qframe has no IronMQ broker",
    "broker_class": "Django Q2 broker classes do not fit qframe's broker contract; use 'broker' in QFRAME",
    "error_reporter": "use a qframe hook plugin (qframe_task_failed) instead",
    "testing": "not needed: the admin always shows queued tasks of the orm broker",
    "time_zone": "each schedule carries its own timezone (default: settings.TIME_ZONE)",
    "has_replica": "route the orm broker to a database alias with 'orm' instead",
}


@dataclass
class Translation:
    """The qframe options a Q_CLUSTER dict amounts to, the app's own settings, and warnings."""

    options: dict[str, Any] = field(default_factory=dict)
    #: Settings of qframe_django itself (``sync``, ``catch_up``, ``label``).
    app: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def translate(q_cluster: Mapping[str, Any], where: str = "Q_CLUSTER") -> Translation:
    """Map every key of a Django Q2 ``Q_CLUSTER`` dict; unknown keys become warnings naming them."""
    out = Translation()
    for key, value in q_cluster.items():
        if key in RENAMED:
            out.options[RENAMED[key]] = value
        elif key in SPECIAL:
            SPECIAL[key](value, out)
        elif key in ("sync", "catch_up", "label"):
            out.app[key] = value
        elif key == "ALT_CLUSTERS":
            out.options["clusters"] = _alt_clusters(value, out)
        elif key in IGNORED:
            out.warnings.append(f"{where} key '{key}' is ignored: {IGNORED[key]}")
        else:
            out.warnings.append(f"{where} key '{key}' is not a Django Q2 setting qframe knows; ignored")
    return out


def _alt_clusters(value: Any, out: Translation) -> dict[str, dict[str, Any]]:
    clusters: dict[str, dict[str, Any]] = {}
    if not isinstance(value, Mapping):
        out.warnings.append("Q_CLUSTER key 'ALT_CLUSTERS' must be a dict of dicts; ignored")
        return clusters
    for name, overrides in value.items():
        if not isinstance(overrides, Mapping):
            out.warnings.append(f"Q_CLUSTER ALT_CLUSTERS['{name}'] must be a dict; ignored")
            continue
        inner = translate(
            {k: v for k, v in overrides.items() if k not in ("name", "cluster_name")},
            f"Q_CLUSTER ALT_CLUSTERS['{name}']",
        )
        out.warnings.extend(inner.warnings)
        clusters[str(name)] = inner.options
    return clusters


def _orm(value: Any, out: Translation) -> None:
    out.options.update(broker="orm", broker_url=str(value))


def _redis(value: Any, out: Translation) -> None:
    out.options["broker"] = "redis"
    if isinstance(value, str):
        out.options["broker_url"] = value
        return
    settings = dict(value or {})
    auth = ""
    password = settings.pop("password", None)
    username = settings.pop("username", None)
    if password is not None:
        auth = f"{quote(str(username or ''))}:{quote(str(password))}@"
    host, port, db = settings.pop("host", "localhost"), settings.pop("port", 6379), settings.pop("db", 0)
    out.options["broker_url"] = f"redis://{auth}{host}:{port}/{db}"
    if settings:
        out.options["broker_options"] = settings


def _sqs(value: Any, out: Translation) -> None:
    settings = dict(value or {})
    region = settings.pop("aws_region", None)
    out.options["broker"] = "sqs"
    out.options["broker_url"] = f"sqs://?region={region}" if region else "sqs://"
    if settings:
        out.options["broker_options"] = settings


def _mongo(value: Any, out: Translation) -> None:
    settings = dict(value or {})
    out.options["broker"] = "mongo"
    out.options["broker_url"] = str(settings.pop("host", "mongodb://localhost:27017"))
    if settings:
        out.options.setdefault("broker_options", {}).update(settings)


def _mongo_db(value: Any, out: Translation) -> None:
    out.options.setdefault("broker_options", {})["database"] = value


def _max_rss(value: Any, out: Translation) -> None:
    # Django Q2 counts kilobytes, qframe mebibytes.
    out.options["max_rss"] = None if value is None else max(1, math.ceil(int(value) / 1024))


def _save_limit_per(value: Any, out: Translation) -> None:
    from qframe.config import FIELDS

    if "save_limit_per" in FIELDS:  # a core that has the option passes it to every store
        out.options["save_limit_per"] = value
    else:
        out.options.setdefault("store_options", {})["save_limit_per"] = value


def _scheduler(value: Any, out: Translation) -> None:
    if not value:
        out.options["scheduler"] = ""


def _ack_failures(value: Any, out: Translation) -> None:
    if not value:
        out.warnings.append(
            "Q_CLUSTER key 'ack_failures' is False: qframe records a failed task once and acks it "
            "(per task: ack_failure=False); retry failing tasks with retry_on instead"
        )


SPECIAL: dict[str, Callable[[Any, Translation], None]] = {
    "orm": _orm,
    "redis": _redis,
    "sqs": _sqs,
    "mongo": _mongo,
    "mongo_db": _mongo_db,
    "max_rss": _max_rss,
    "save_limit_per": _save_limit_per,
    "scheduler": _scheduler,
    "ack_failures": _ack_failures,
}
