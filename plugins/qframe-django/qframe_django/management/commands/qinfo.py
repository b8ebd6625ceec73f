"""``manage.py qinfo``: the core's ``qframe info`` on the project's settings."""

from __future__ import annotations

from qframe_django.management.corecli import CoreCommand


class Command(CoreCommand):
    """Django Q2's ``qinfo``, delegated to ``qframe info`` (arguments passed through)."""

    help = "Run 'qframe info' with the project's settings (arguments are passed through)."
    core_name = "info"
