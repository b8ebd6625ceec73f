"""How ``monitor`` and ``memory`` show numbers: states in colour, durations, sizes in MiB."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich loads only when something is drawn: cluster processes never need it
    from rich.text import Text

STATE_STYLES = {
    "Starting": "yellow",
    "Idle": "green",
    "Working": "bold cyan",
    "Stopping": "yellow",
    "Stopped": "red",
}


def state(status: str) -> Text:
    """A cluster's state, coloured (an unknown state in the default colour)."""
    from rich.text import Text

    return Text(status, style=STATE_STYLES.get(status, ""))


def duration(seconds: float) -> str:
    """``1:02:03``, or ``2d 01:02:03`` past a day."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {hours:02d}:{minutes:02d}:{secs:02d}" if days else clock


def mib(size: int) -> str:
    """Bytes as MiB with one decimal."""
    return f"{size / 2**20:.1f}"
