"""A store for the tests of ``results_pending``: SQLite that refuses result saves on demand."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from qframe.builtin.sqlite import SQLiteStore
from qframe.errors import StoreError
from qframe.stores.base import ResultMeta


def block_file() -> Path:
    """While this file (``$QFRAME_TEST_LOG.blocked``) exists, saving results fails."""
    return Path(os.environ["QFRAME_TEST_LOG"] + ".blocked")


class BlockedSaves(SQLiteStore):
    """SQLite whose ``save_many`` fails while :func:`block_file` exists; statuses are still saved."""

    def save_many(self, results: Sequence[tuple[ResultMeta, bytes]]) -> None:
        """Fail while blocked, else save as SQLite does."""
        if block_file().exists():
            raise StoreError("result saves are blocked by the test")
        super().save_many(results)
