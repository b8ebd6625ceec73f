"""The Django app: add ``"qframe_django"`` to ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig


class QframeDjangoConfig(AppConfig):
    """Registers the system checks and bridges the core's hooks to Django signals."""

    name = "qframe_django"
    verbose_name = "qframe"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the settings check (``manage.py check`` reports a bad ``QFRAME``/``Q_CLUSTER``)."""
        from qframe_django import checks

        checks.register()
