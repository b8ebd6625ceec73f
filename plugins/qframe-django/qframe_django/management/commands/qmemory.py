"""``manage.py qmemory``: the core's ``qframe memory`` on the project's settings."""

from __future__ import annotations

from qframe_django.management.corecli import CoreCommand


class Command(CoreCommand):
    """Django Q2's ``qmemory``, delegated to ``qframe memory`` (arguments passed through)."""

    help = "Run 'qframe memory' with the project's settings (arguments are passed through)."
    core_name = "memory"
