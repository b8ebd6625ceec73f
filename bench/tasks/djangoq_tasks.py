"""Django Q2's benchmark task; enqueued by name as ``djangoq_tasks.inc``."""


def inc(x: int) -> int:
    """Return ``x + 1``."""
    return x + 1
