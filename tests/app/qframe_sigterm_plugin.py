"""A hook plugin that sends SIGTERM to the cluster's main process while a worker boots.

The worker then takes a second more to boot, so the sentinel is still starting the
cluster well after the stop request arrived: it comes during start-up.
"""

from __future__ import annotations

import os
import signal
import time

from qframe import Config, hookimpl

MAIN_PID = "QFRAME_TEST_MAIN_PID"


@hookimpl
def qframe_cluster_starting(config: Config) -> None:
    os.environ[MAIN_PID] = str(os.getpid())  # the cluster's children inherit it


@hookimpl
def qframe_process_boot(role: str, name: str, config: Config) -> None:
    if role == "worker" and MAIN_PID in os.environ:
        os.kill(int(os.environ.pop(MAIN_PID)), signal.SIGTERM)
        time.sleep(1)
