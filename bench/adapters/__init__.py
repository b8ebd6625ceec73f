"""One adapter per benchmarked system; imported lazily so a missing peer breaks only its row."""

from __future__ import annotations

import importlib

from adapters.base import Adapter, RunSpec

#: System name -> ``module:Class`` of its adapter.
ADAPTERS: dict[str, str] = {
    "qframe": "adapters.qframe:QframeAdapter",
    "huey": "adapters.huey:HueyAdapter",
    "celery": "adapters.celery:CeleryAdapter",
    "djangoq": "adapters.djangoq:DjangoQAdapter",
    "rq": "adapters.rq:RQAdapter",
    "dramatiq": "adapters.dramatiq:DramatiqAdapter",
    "qframe-threads": "adapters.qframe_managers:QframeThreadsAdapter",
    "qframe-asyncio": "adapters.qframe_managers:QframeAsyncioAdapter",
    "celery-threads": "adapters.celery:CeleryThreadsAdapter",
    "dramatiq-threads": "adapters.dramatiq:DramatiqThreadsAdapter",
}

#: (system, broker) -> ``module:Class`` where a system's adapter differs by broker; the
#: broker modes' tables keep the system names (qframe, celery, djangoq) of the Redis table.
BROKER_ADAPTERS: dict[tuple[str, str], str] = {
    ("qframe", "sqs"): "adapters.sqs:QframeSqsAdapter",
    ("celery", "sqs"): "adapters.sqs:CelerySqsAdapter",
    ("djangoq", "sqs"): "adapters.sqs:DjangoQSqsAdapter",
    ("qframe", "mongo"): "adapters.mongo:QframeMongoAdapter",
    ("djangoq", "mongo"): "adapters.mongo:DjangoQMongoAdapter",
    ("qframe", "orm"): "adapters.orm:QframeOrmAdapter",
    ("djangoq", "orm"): "adapters.orm:DjangoQOrmAdapter",
}

#: Redis database number of each system, so a crashed run never leaks into another's.
REDIS_DB: dict[str, int] = {
    "qframe": 1,
    "huey": 2,
    "celery": 3,
    "djangoq": 4,
    "rq": 5,
    "dramatiq": 6,
    "qframe-threads": 7,
    "qframe-asyncio": 8,
    "celery-threads": 9,
    "dramatiq-threads": 10,
}


def load(spec: RunSpec) -> Adapter:
    """Import and build the adapter for ``spec.system`` on ``spec.backend``."""
    try:
        target = BROKER_ADAPTERS.get((spec.system, spec.backend)) or ADAPTERS[spec.system]
    except KeyError:
        raise ValueError(f"unknown system {spec.system!r}; known: {', '.join(ADAPTERS)}") from None
    module, cls = target.split(":")
    adapter: Adapter = getattr(importlib.import_module(module), cls)(spec)
    return adapter
