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
from qframe.cluster.sentinel import process_name, run_sentinel
from qframe.cluster.stat import Stat, read_statuses
from qframe.config import Config
from qframe.drivers import key_file, make_broker, make_process_manager, make_store
from qframe.errors import ConfigError, QFrameError
from qframe.hooks import Hooks
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
    def stat(self) -> Stat | None:
        """The cluster's last published status, read from the status store."""
        return next((s for s in read_statuses(self.config) if s.cluster_id == self.cluster_id), None)

    def start(self) -> None:
        """Start the sentinel and wait until every process is ready."""
        name = self.config.name
        self.hooks.configure(self.config)
        broker = make_broker(self.config)  # a bad driver name or URL fails here, in one clear line
        broker.close()
        if self.config.lease < broker.lease_resolution:
            raise ConfigError(
                f"lease ({self.config.lease:g} s) is shorter than broker '{self.config.broker}' can keep "
                f"(its lease_resolution is {broker.lease_resolution:g} s)"
            )
        make_store(self.config).close()
        config = self.config
        generated_key_file = key_file(config)
        if generated_key_file is None:  # a networked broker without a key fails before anything starts
            secret_keys(config.secret_key, config.secret_key_fallbacks, None, config.broker)
        self.is_starting = True
        log.info("Q Cluster %s starting.", name)
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
            raise QFrameError(
                f"Q Cluster {name} failed to start. Sentinel exited with exit code {self.sentinel.exitcode}."
            )
        self.is_starting, self.is_running = False, True
        self.start_event.set()
        log.info("Q Cluster %s running.", name)
        self.hooks.cluster_started(self)

    def _wait_running(self, deadline: float) -> bool:
        """Wait for the sentinel's ``running``; give up when it dies or a stop is requested."""
        while time.monotonic() < deadline and not self._stop_requested:
            try:
                if self._control.poll(0.1):
                    return bool(self._control.recv() == "running")
            except EOFError:
                return False
        return False

    def stop(self) -> None:
        """Run the stop procedure and wait for it to finish."""
        if self.sentinel is None or self.has_stopped:
            return
        self.is_stopping = True
        self.stop_event.set()
        log.info("Q Cluster %s stopping.", self.config.name)
        self.hooks.cluster_stopping(self)
        with contextlib.suppress(OSError):
            self._control.send("stop")
        self.sentinel.join(self.config.grace + 60)
        if self.sentinel.is_alive():
            log.error("the sentinel did not stop in time; killing it")
            self.processes.kill(self.sentinel)
        self._cleanup()
        self.is_running, self.is_stopping, self.has_stopped = False, False, True
        log.info("Q Cluster %s has stopped.", self.config.name)
        self.hooks.cluster_stopped(self)

    def run(self) -> int:
        """Start, wait for SIGTERM or SIGINT (the handler only sets a flag), stop; return an exit code."""
        restore = self.processes.on_stop_signals(self._request_stop)
        try:
            self.start()
            while not self._stop_requested and self.sentinel is not None and self.sentinel.is_alive():
                time.sleep(0.1)
            crashed = not self._stop_requested
            if crashed:
                log.critical(
                    "the sentinel died unexpectedly (exit code %s)", self.sentinel and self.sentinel.exitcode
                )
            self.stop()
            return 1 if crashed else 0
        finally:
            restore()

    def _request_stop(self) -> None:
        self._stop_requested = True

    def _cleanup(self) -> None:
        if self._rundir:
            shutil.rmtree(self._rundir, ignore_errors=True)
