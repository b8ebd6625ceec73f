"""Collation of an iterator: its elements' results, once all are in, as one record in input order.

Run by the monitor after saving an element's final result, before acking its delivery: if
the collation fails, the delivery comes back, runs again and collates again. Any monitor of
any cluster may complete the count; each writes the same record, and once it is a success
the store keeps it (the first success is final). A collation written while a failed element
still had a retry coming is a failure, so the later, complete one replaces it.
"""

from __future__ import annotations

import time

from qframe.iterate import element_index
from qframe.serialize import Codec
from qframe.stores.base import Store
from qframe.task import TaskResult


def collate(store: Store, codec: Codec, group: str, count: int, cached: float = 0.0) -> bool:
    """Write iterator ``group``'s collated record if its ``count`` elements have all finished.

    With ``cached`` (the elements' ``cached=`` seconds) the collated record expires that
    long after it was written, as its elements do.
    """
    if store.count_group(group) + store.count_group(group, failures=True) < count:
        return False
    records = [TaskResult.from_dict(codec.decode(blob)) for blob in store.get_group(group, failures=True)]
    records.sort(key=lambda record: element_index(group, record.id))
    first = records[0]
    collated = TaskResult(
        id=group,
        name=first.name,
        func=first.func,
        args=(),
        kwargs={},
        result=[record.result for record in records],
        success=all(record.success for record in records),
        started=min(record.started for record in records),
        stopped=time.time(),
        attempts=1,
        cluster=first.cluster,
        group=None,
        enqueued=first.enqueued,
    )
    meta = collated.meta._replace(expires=collated.stopped + cached) if cached else collated.meta
    store.save_many([(meta, codec.encode(collated.to_dict()))])
    return True
