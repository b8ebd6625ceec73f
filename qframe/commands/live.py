"""A full-screen view redrawn every second until ``q`` (or Ctrl-C), for ``monitor`` and ``memory``."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich loads only when something is drawn: cluster processes never need it
    from rich.console import RenderableType


#: Seconds between two frames.
REFRESH = 1.0
QUIT_KEYS = frozenset("qQ")


def run_live(frame: Callable[[], RenderableType], refresh: float = REFRESH) -> None:
    """Show ``frame()`` full screen, a new one every ``refresh`` seconds, until ``q`` or Ctrl-C."""
    from rich.console import Console
    from rich.live import Live

    console = Console()
    with (
        contextlib.suppress(KeyboardInterrupt),
        keys() as pressed,
        Live(frame(), console=console, screen=True, auto_refresh=False) as live,
    ):
        while not pressed(refresh) & QUIT_KEYS:
            live.update(frame(), refresh=True)


@contextlib.contextmanager
def keys() -> Iterator[Callable[[float], set[str]]]:
    """``pressed(timeout)``: the keys typed within ``timeout`` seconds (none when stdin is not a terminal).

    The terminal is put in cbreak mode (keys arrive without Enter, Ctrl-C still
    interrupts) and restored afterwards.
    """
    if not sys.stdin.isatty():
        yield _wait_without_keys
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def pressed(timeout: float) -> set[str]:
        readable, _, _ = select.select([fd], [], [], timeout)
        return set(os.read(fd, 64).decode(errors="replace")) if readable else set()

    try:
        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _wait_without_keys(timeout: float) -> set[str]:
    time.sleep(timeout)  # no terminal to read keys from: only Ctrl-C or a signal stops the view
    return set()


def print_once(renderable: RenderableType) -> None:
    """Print one frame; into a pipe or a file, as wide as the frame needs, so no row wraps."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        unbounded = console.options.update_width(10_000)
        console.width = max(console.width, console.measure(renderable, options=unbounded).maximum)
    console.print(renderable)
