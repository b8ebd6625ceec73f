"""Task functions of the test project (importable in cluster workers as ``djtest_app.tasks``)."""

from __future__ import annotations

from typing import Any

from django.db.models import F

from djtest_app.models import Widget


def touch_widget(widget: Widget) -> str:
    """Count one run on the widget's row (so a second run of one task shows) and return its name."""
    Widget.objects.using(widget._state.db or "default").filter(pk=widget.pk).update(runs=F("runs") + 1)
    return widget.name


def add(a: int, b: int) -> int:
    """a + b."""
    return a + b


def fail(message: str) -> Any:
    """Raise ValueError(message)."""
    raise ValueError(message)
