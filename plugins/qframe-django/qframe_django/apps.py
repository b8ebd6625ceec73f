"""The Django app: add ``"qframe_django"`` to ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig


class QframeDjangoConfig(AppConfig):
    """Registers the system checks and bridges the core's hooks to Django signals."""

    name = "qframe_django"
    verbose_name = "qframe"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the settings check and apply ``label`` (Django Q2's admin heading)."""
        from qframe_django import checks
        from qframe_django.conf import app_setting

        checks.register()
        self.verbose_name = str(app_setting("label", self.verbose_name))
