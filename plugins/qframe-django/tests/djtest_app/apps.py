"""The test app: connects Django Q2 style signal receivers."""

from django.apps import AppConfig


class DjtestAppConfig(AppConfig):
    """Connects the receivers of :mod:`djtest_app.receivers`."""

    name = "djtest_app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the receivers, as a Django Q2 project does."""
        from djtest_app import receivers

        receivers.connect()
