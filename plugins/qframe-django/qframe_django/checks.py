"""``manage.py check``: a bad ``QFRAME`` / ``Q_CLUSTER`` is a system check error, not a crash.

Each line of the core's :class:`~qframe.errors.ConfigError` becomes one error
(``qframe.E001``); each ignored Django Q2 key one warning (``qframe.W001``).
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from qframe.errors import QFrameError


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Load the project's qframe Config and report every problem with it."""
    from qframe_django.conf import load_config, translation

    messages: list[checks.CheckMessage] = [
        checks.Warning(text, hint="See docs/django.md, 'Moving from Django Q2'.", id="qframe.W001")
        for text in translation().warnings
    ]
    try:
        load_config()
    except QFrameError as exc:
        messages += [
            checks.Error(
                _from_settings(line), hint="Fix settings.QFRAME or settings.Q_CLUSTER.", id="qframe.E001"
            )
            for line in str(exc).splitlines()
        ]
    return messages


def _from_settings(line: str) -> str:
    """The core names the layer the Django settings arrive in "arguments"; here they are the settings."""
    return line.replace(" in arguments", " in the settings").replace(
        "(from arguments)", "(from the settings)"
    )


def register() -> None:
    """Register :func:`check_settings` under the ``qframe`` tag."""
    checks.register(check_settings, "qframe")
