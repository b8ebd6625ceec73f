"""``manage.py qcluster``: run a qframe cluster with the project's settings (Django Q2's command)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from qframe.errors import QFrameError


class Command(BaseCommand):
    """Start a cluster in the foreground; SIGTERM or Ctrl-C stops it (the seed's log lines)."""

    help = "Start a qframe cluster (Django Q2's qcluster)."

    def add_arguments(self, parser: CommandParser) -> None:
        """``--name`` and ``--run-once``, as in Django Q2."""
        parser.add_argument("-n", "--name", help="Cluster (queue) name; default: QFRAME/Q_CLUSTER 'name'.")
        parser.add_argument(
            "--run-once", action="store_true", help="Start the cluster, then stop it at once."
        )
        parser.add_argument("--workers", type=int, help="Worker processes.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the Config from the settings and run the core's cluster."""
        from qframe.cluster.cluster import Cluster
        from qframe.log import configure as configure_logging
        from qframe_django.conf import load_config

        overrides = {"name": options.get("name"), "workers": options.get("workers")}
        try:
            config = load_config({k: v for k, v in overrides.items() if v is not None})
            configure_logging(config.log_level)
            cluster = Cluster(config)
            if options["run_once"]:
                cluster.start()
                cluster.stop()
                return
            code = cluster.run()
        except QFrameError as exc:
            raise CommandError(str(exc).replace("\n", "; ")) from None
        if code:
            sys.exit(code)
