"""Running ``qframe cluster`` under a process manager: the pidfile around the cluster's run."""

from __future__ import annotations

from qframe.cluster.cluster import Cluster
from qframe.config import Config
from qframe.pidfile import PidFile
from qframe.plugins import make_plugin_manager


def run_cluster(config: Config, pidfile: str | None = None) -> int:
    """Run a cluster in the foreground until it stops; return its exit code.

    With ``pidfile``, the file is claimed before anything starts (a live holder stops the
    start with :class:`~qframe.errors.QFrameError`), written once the cluster runs, and
    removed when it exits.
    """
    if pidfile is None:
        return Cluster(config).run()
    holder = PidFile(pidfile)
    holder.claim()
    pm = make_plugin_manager(config)
    pm.register(holder, name="qframe.pidfile")
    try:
        return Cluster(config, pm).run()
    finally:
        holder.remove()
