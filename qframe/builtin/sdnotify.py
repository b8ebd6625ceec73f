"""The core's service-manager plugin: systemd's notification protocol from a running cluster.

It does nothing unless ``NOTIFY_SOCKET`` is set (systemd sets it for ``Type=notify``
services) and the ``sd_notify`` option is on. Then the cluster's main process sends
``READY=1`` once every cluster process runs and ``STOPPING=1`` when the stop procedure
begins; the sentinel sends, every guard cycle, a ``STATUS=`` line (when it changed) and
``WATCHDOG=1``, the watchdog ping only while it sees all its children alive and the
broker answering. The sentinel is not the service's main process, so the unit needs
``NotifyAccess=all`` (see ``docs/deploy.md``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from qframe.hookspecs import hookimpl
from qframe.notify_socket import NotifySocket

if TYPE_CHECKING:
    from qframe.cluster.cluster import Cluster
    from qframe.cluster.stat import Stat
    from qframe.config import Config

log = logging.getLogger("qframe")


def status_line(stat: Stat) -> str:
    """The ``STATUS=`` text: queue sizes and workers alive, as ``systemctl status`` shows it."""
    return (
        f"{stat.status}: {stat.queued} queued, {stat.leased} in progress, "
        f"{stat.workers_alive}/{len(stat.workers)} workers alive"
        + ("" if stat.broker_reachable else ", broker unreachable")
    )


def healthy(stat: Stat) -> bool:
    """Whether the sentinel may ping the watchdog: every child alive and the broker answering."""
    return stat.children_alive and stat.broker_reachable


def watchdog_too_short(config: Config, environ: Mapping[str, str]) -> str | None:
    """A warning when the service manager's watchdog expires before two guard cycles passed."""
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    seconds = int(usec) / 1_000_000
    if seconds >= 2 * config.guard_cycle:
        return None
    return (
        f"the service manager's watchdog expires after {seconds:g} s, less than two guard cycles "
        f"({2 * config.guard_cycle:g} s): raise WatchdogSec= or lower guard_cycle"
    )


class ServiceNotifier:
    """The hook plugin: one per plugin manager, its socket opened on first use in its process."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._socket: NotifySocket | None = None
        #: The last ``STATUS=`` text delivered, so that an unchanged status is not sent again.
        self._last_status = ""

    def sender(self, config: Config) -> NotifySocket | None:
        """This process's notification socket, or None when notifications are off or nobody listens."""
        if not config.sd_notify:
            return None
        if self._socket is None:
            self._socket = NotifySocket(self._environ)
        return self._socket if self._socket.enabled else None

    @hookimpl
    def qframe_cluster_started(self, cluster: Cluster) -> None:
        """Tell the service manager the cluster is ready."""
        sender = self.sender(cluster.config)
        if sender is None:
            return
        warning = watchdog_too_short(cluster.config, os.environ if self._environ is None else self._environ)
        if warning is not None:
            log.warning("%s", warning)
        sender.send(READY="1", STATUS=f"running queue '{cluster.config.name}'")

    @hookimpl
    def qframe_sentinel_tick(self, stat: Stat, config: Config) -> None:
        """Send the cluster's status when it changed, and the watchdog ping while it is healthy."""
        sender = self.sender(config)
        if sender is None:
            return
        fields: dict[str, str] = {}
        line = status_line(stat)
        if line != self._last_status:
            fields["STATUS"] = line
        if healthy(stat):
            fields["WATCHDOG"] = "1"
        if fields and sender.send(**fields) and "STATUS" in fields:
            self._last_status = line

    @hookimpl
    def qframe_cluster_stopping(self, cluster: Cluster) -> None:
        """Tell the service manager the cluster is stopping."""
        sender = self.sender(cluster.config)
        if sender is not None:
            sender.send(STOPPING="1", STATUS="stopping")
