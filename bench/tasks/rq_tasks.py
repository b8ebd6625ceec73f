"""RQ's benchmark task; RQ imports it by its dotted path ``rq_tasks.inc``."""


def inc(x: int) -> int:
    """Return ``x + 1``."""
    return x + 1
