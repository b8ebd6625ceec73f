"""The Cluster: the main process that starts the sentinel and runs the stop procedure."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid

import pluggy

from qframe.cluster.context import Context
from qframe.cluster.outage import EXIT_OUTAGE
from qframe.cluster.reach import reach_broker, reach_store
from qframe.cluster.sentinel import OUTAGE, process_name, run_sentinel
from qframe.cluster.stat import Stat, read_statuses
from qframe.config import Config
from qframe.drivers import key_file, make_process_manager
from qframe.drivers import load as load_driver
from qframe.errors import ConfigError, QFrameError
from qframe.hooks import Hooks
from qframe.names import humanize
from qframe.plugins import make_plugin_manager
from qframe.processes import ChildProcess
from qframe.serialize import secret_keys

log = logging.getLogger("qframe")


class Cluster:
    """One cluster: a sentinel guarding a pusher, ``workers`` workers and a monitor.

    ``pm`` serves the hooks of this, the main process. Every cluster process builds its
    own plugin manager from ``config``: a plugin registered on ``pm`` by object alone does
    not reach them (list it in ``plugin_modules`` or an entry point instead).
    """

    def __init__(self, config: Config, pm: pluggy.PluginManager | None = None) -> None:
        self.config = config
        self.pm = pm or make_plugin_manager(config)
        self.hooks = Hooks(self.pm)
        self.processes = make_process_manager(config)
        self.cluster_id = uuid.uuid4().hex
        #: The cluster's own name in its log lines: the four-word humanhash of its id, as in
        #: Django Q2. Its queue's name is ``config.name``.
        self.name = humanize(self.cluster_id)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.sentinel: ChildProcess | None = None
        self.is_starting = self.is_running = self.is_stopping = self.has_stopped = False
        #: Set once every process is ready (the seed's ``start_event``).
        self.start_event = threading.Event()
        #: Set when the stop procedure begins (the seed's ``stop_event``).
        self.stop_event = threading.Event()
        self._stop_requested = False
        self._rundir = ""

    @property
    def timeout(self) -> float | None:
        """The cluster's task timeout in seconds."""
        return self.config.timeout

    @property
    def stat(self) -> Stat:
        """The cluster's last published status, read from the status store.

        Before the start, after the stop, or when no status verifies, a status of its own
        in state ``Stopped`` (``Starting`` while it starts), as in Django Q2.
        """
        if self.sentinel is not None:
            for stat in read_statuses(self.config):
                if stat.cluster_id == self.cluster_id:
                    return stat
        status = "Starting" if self.is_starting else "Stopped"
        return Stat(self.cluster_id, self.config.name, self.host, self.pid, status=status)

    def start(self) -> int:
        """Start the sentinel, wait until every process is ready, and return the cluster's pid.

        Nothing starts until the broker and the store answer (for up to ``startup_wait``
        seconds). A stop requested meanwhile (SIGTERM under :meth:`run`) is carried out
        once the cluster runs, by the orderly stop procedure.
        """
        config = self.config
        self.hooks.configure(config)
        self._check_lease()
        generated_key_file = key_file(config)
        if generated_key_file is None:  # a networked broker without a key fails before anything starts
            secret_keys(config.secret_key, config.secret_key_fallbacks, None, config.broker)
        self.is_starting = True
        try:
            broker_line = self._reach()
        except BaseException:
            self.is_starting = False
            raise
        if broker_line is None:  # asked to stop while waiting for the servers: nothing was started
            self.is_starting, self.has_stopped = False, True
            return self.pid
        log.info("Q Cluster %s starting.", self.name)
        log.info("Q Cluster %s serves queue '%s' (broker: %s)", self.name, config.name, broker_line)
        self.hooks.cluster_starting(config)
        keys = secret_keys(config.secret_key, config.secret_key_fallbacks, generated_key_file, config.broker)
        self._rundir = tempfile.mkdtemp(prefix="qframe-")
        context = Context(self.config, self.cluster_id, tuple(keys), self._rundir, secrets.token_bytes(16))
        self._control, sentinel_end = self.processes.pipe()
        self.sentinel = self.processes.spawn(
            run_sentinel, (context, process_name(), sentinel_end, os.getpid()), "sentinel"
        )
        sentinel_end.close()
        if not self._wait_running(deadline=time.monotonic() + 120):
            self.sentinel.join(5)
            if self.sentinel.is_alive():
                self.processes.kill(self.sentinel)
            self._cleanup()
            self.is_starting, self.has_stopped = False, True
            raise QFrameError(
                f"Q Cluster {self.name} failed to start. "
                f"Sentinel exited with exit code {self.sentinel.exitcode}."
            )
        self.is_starting, self.is_running = False, True
        self.start_event.set()
        log.info("Q Cluster %s running.", self.name)
        self.hooks.cluster_started(self)
        return self.pid

    def _check_lease(self) -> None:
        resolution = float(load_driver("broker", self.config.broker).lease_resolution)
        if self.config.lease < resolution:
            raise ConfigError(
                f"lease ({self.config.lease:g} s) is shorter than broker '{self.config.broker}' can keep "
                f"(its lease_resolution is {resolution:g} s)"
            )

    def _reach(self) -> str | None:
        """Wait until broker and store answer; return the broker's description (None: stop asked)."""
        broker = reach_broker(self.config, lambda: self._stop_requested)
        if broker is None:
            return None
        description = broker.info()
        broker.close()
        store = reach_store(self.config, lambda: self._stop_requested)
        if store is None:
            return None
        store.close()
        return description

    def _wait_running(self, deadline: float) -> bool:
        """Wait for the sentinel's ``running``; give up when it dies.

        A stop requested meanwhile does not interrupt the start: the sentinel reads it
        from its pipe as soon as every process runs, and stops them in order.
        """
        while time.monotonic() < deadline:
            try:
                if self._control.poll(0.1):
                    return bool(self._control.recv() == "running")
            except EOFError:
                return False
        return False

    def stop(self) -> bool:
        """Run the stop procedure and wait for it to finish.

        Return True when it stopped a running cluster, False when nothing ran (never
        started, failed to start, or stopped already).
        """
        if self.sentinel is None or self.has_stopped:
            return False
        self.is_stopping = True
        self.stop_event.set()
        log.info("Q Cluster %s stopping.", self.name)
        self.hooks.cluster_stopping(self)
        with contextlib.suppress(OSError):
            self._control.send("stop")
        self.sentinel.join(self.config.grace + 60)
        if self.sentinel.is_alive():
            log.error("the sentinel did not stop in time; killing it")
            self.processes.kill(self.sentinel)
        self._cleanup()
        self.is_running, self.is_stopping, self.has_stopped = False, False, True
        log.info("Q Cluster %s has stopped.", self.name)
        self.hooks.cluster_stopped(self)
        return True

    def run(self) -> int:
        """Start, wait for SIGTERM or SIGINT (the handler only sets a flag), stop; return an exit code.

        ``0`` after an orderly stop, ``1`` when the sentinel died unexpectedly, and
        :data:`EXIT_OUTAGE` when the broker stayed unreachable for longer than ``max_outage``.
        """
        restore = self.processes.on_stop_signals(self._request_stop)
        try:
            self.start()
            code = self._watch()
            self.stop()
            return code
        finally:
            restore()

    def _watch(self) -> int:
        """Wait while the cluster runs; return the exit code its end calls for."""
        while not self._stop_requested and self.sentinel is not None and self.sentinel.is_alive():
            try:
                if self._control.poll(0.1) and self._control.recv() == OUTAGE:
                    return EXIT_OUTAGE
            except EOFError:  # the sentinel is exiting
                self.sentinel.join(1)
        if self._stop_requested or self.sentinel is None:
            return 0
        log.critical("the sentinel died unexpectedly (exit code %s)", self.sentinel.exitcode)
        return 1

    def _request_stop(self) -> None:
        self._stop_requested = True

    def _cleanup(self) -> None:
        if self._rundir:
            shutil.rmtree(self._rundir, ignore_errors=True)
