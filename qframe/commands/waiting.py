"""``qframe enqueue --wait``: wait for the task's result with a spinner on stderr, then print it."""

from __future__ import annotations

import json
import sys

import click

from qframe.client import Client


def wait_and_print(client: Client, task_id: str, wait: float) -> None:
    """Wait up to ``wait`` seconds (-1: no limit) for the result; print it as ``qframe result`` does.

    The spinner goes to stderr (only on a terminal), so stdout stays the task id and
    the record. Without a result in time it says so and exits with code 1.
    """
    from rich.console import Console

    with Console(stderr=True).status(f"waiting for task {task_id}", spinner="dots"):
        record = client.fetch(task_id, wait=wait)
    if record is None:
        click.echo(f"qframe: no result for task {task_id} after {wait:g} s", err=True)
        sys.exit(1)
    click.echo(json.dumps(vars(record), indent=2, default=repr))
