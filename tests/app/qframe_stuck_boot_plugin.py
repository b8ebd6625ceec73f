"""A hook plugin whose workers cannot finish booting while ``$QFRAME_TEST_STUCK`` exists.

A worker started then records ``stuck`` in the tests' log and waits (up to a minute) for
the file to go away: the sentinel, waiting for it to report ready, cannot replace it.
"""

from __future__ import annotations

import os
import time

from qframe import Config, hookimpl


@hookimpl
def qframe_process_boot(role: str, name: str, config: Config) -> None:
    marker = os.environ.get("QFRAME_TEST_STUCK", "")
    if role != "worker" or not marker or not os.path.exists(marker):
        return
    with open(os.environ["QFRAME_TEST_LOG"], "a") as log:
        log.write(f"stuck\t{os.getpid()}\n")
    deadline = time.monotonic() + 60
    while os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
