"""What every process of one cluster shares, and how each of them boots."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from qframe.config import Config
from qframe.drivers import make_process_manager
from qframe.errors import QFrameError
from qframe.hooks import Hooks
from qframe.log import configure as configure_logging
from qframe.plugins import make_plugin_manager
from qframe.processes import ProcessManager
from qframe.serialize import Codec, result_codec

log = logging.getLogger("qframe")


@dataclass(frozen=True)
class Context:
    """The settings, identity, keys and meeting points of one running cluster (picklable)."""

    config: Config
    cluster_id: str
    keys: tuple[str, ...]
    #: A private directory for the cluster's channels.
    rundir: str
    authkey: bytes

    @property
    def pusher_address(self) -> str:
        """Where workers reach the pusher."""
        return os.path.join(self.rundir, "pusher.sock")

    @property
    def monitor_address(self) -> str:
        """Where workers and the pusher reach the monitor."""
        return os.path.join(self.rundir, "monitor.sock")

    def codec(self) -> Codec:
        """A codec for this cluster's queue."""
        return Codec(self.keys, self.config.name, self.config.serializer, self.config.compress)

    def result_codec(self) -> Codec:
        """The codec of saved results."""
        return result_codec(self.keys, self.config)


@dataclass(frozen=True)
class Runtime:
    """What a booted cluster process works with: its hooks and its process manager."""

    hooks: Hooks
    processes: ProcessManager


def boot(context: Context, role: str, name: str) -> Runtime:
    """Prepare a new cluster process before it opens a driver or takes a task.

    The process rebuilds its plugin manager from the configuration (nothing live crosses
    into it, whatever the start method), then runs ``qframe_configure`` and
    ``qframe_process_boot``. It ignores SIGINT and SIGTERM: a Ctrl-C or a ``kill`` sent to
    the whole process group (supervisor's ``stopasgroup``, systemd) reaches the main
    process, which runs the orderly stop; children stop when the sentinel tells them to.
    """
    config = context.config
    if not logging.getLogger("qframe").handlers:  # spawn and forkserver start with no handlers
        configure_logging(config.log_level)
    processes = make_process_manager(config)
    processes.ignore_stop_signals()
    from qframe import client

    client.forget_default()
    try:
        hooks = Hooks(make_plugin_manager(config))
        hooks.configure(config)
        hooks.process_boot(role, name, config, context.cluster_id)
    except QFrameError as exc:  # a PluginError raised on purpose, or a plugin module that does not import
        log.critical("%s %s cannot start: %s", role, name, exc)
        raise SystemExit(2) from None
    return Runtime(hooks, processes)
