"""Settings for taking the admin screenshot in the docs (not used by the tests).

The test project plus static files and a middleware that logs every request in as the
first superuser, so a headless browser sees the admin without a login form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from djtest_settings import *  # noqa: F403
from djtest_settings import INSTALLED_APPS, MIDDLEWARE

DEBUG = True
INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.staticfiles"]
STATIC_URL = "/static/"
MIDDLEWARE = [*MIDDLEWARE, "screenshot_settings.LogInAsAdmin"]


class LogInAsAdmin:
    """Log the request in as the first superuser (screenshots only)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        from django.contrib.auth.models import User

        request.user = User.objects.filter(is_superuser=True).first()
        request._cached_user = request.user
        return self.get_response(request)
