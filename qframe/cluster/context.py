"""What every process of one cluster shares, and how each of them boots."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass

import pluggy

from qframe.config import Config
from qframe.plugins import notify
from qframe.serialize import Codec, result_codec

log = logging.getLogger("qframe")


@dataclass(frozen=True)
class Context:
    """The settings, identity, keys and meeting points of one running cluster."""

    config: Config
    cluster_id: str
    keys: tuple[str, ...]
    #: A private directory for the cluster's Unix sockets.
    rundir: str
    authkey: bytes

    @property
    def pusher_address(self) -> str:
        """Where workers reach the pusher."""
        return os.path.join(self.rundir, "pusher.sock")

    @property
    def monitor_address(self) -> str:
        """Where the pusher reaches the monitor."""
        return os.path.join(self.rundir, "monitor.sock")

    def codec(self) -> Codec:
        """A codec for this cluster's queue."""
        return Codec(self.keys, self.config.name, self.config.serializer, self.config.compress)

    def result_codec(self) -> Codec:
        """The codec of saved results."""
        return result_codec(self.keys, self.config)


def boot(context: Context, pm: pluggy.PluginManager, role: str, name: str) -> None:
    """Prepare a freshly forked cluster process before it does any work.

    Children ignore SIGINT and SIGTERM: a Ctrl-C or a ``kill`` sent to the whole process
    group (supervisor's ``stopasgroup``, systemd) reaches the main process, which runs the
    orderly stop; children stop when the sentinel tells them to.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from qframe import client

    client.forget_default()
    notify(pm, "qframe_process_boot", role=role, name=name, config=context.config)
