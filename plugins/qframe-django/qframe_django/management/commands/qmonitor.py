"""``manage.py qmonitor``: the core's ``qframe monitor`` on the project's settings."""

from __future__ import annotations

from qframe_django.management.corecli import CoreCommand


class Command(CoreCommand):
    """Django Q2's ``qmonitor``, delegated to ``qframe monitor`` (arguments passed through)."""

    help = "Run 'qframe monitor' with the project's settings (arguments are passed through)."
    core_name = "monitor"
