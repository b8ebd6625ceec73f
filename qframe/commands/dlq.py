"""``qframe dlq``: list, show, requeue and purge a queue's dead letters.

Each sub-command takes ``--cluster NAME`` for the queue (the configured cluster name when
left out), as ``qframe enqueue`` does. ``--name`` of ``requeue`` is a task's name, not a queue.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from qframe.client import Client
from qframe.commands.common import command_config
from qframe.letters import DeadLetterQueue, Progress, describe
from qframe.stores.base import DeadLetter

#: From this many dead letters on, requeue and purge show a progress bar (on stderr).
PROGRESS_FROM = 20

cluster_option = click.option(
    "--cluster", "cluster_name", help="Queue (cluster name) [default: the configured one]."
)


def open_queue(ctx: click.Context, cluster_name: str | None) -> DeadLetterQueue:
    """The dead letters of the chosen queue, with the settings the root command was given."""
    config = command_config(ctx)
    return Client(config).dead_letter_queue(cluster_name)


def when(letter: DeadLetter) -> str:
    """The letter's ``dead_at`` as local date and time to the second ("-" when unknown)."""
    if not letter.dead_at:
        return "-"
    return datetime.datetime.fromtimestamp(letter.dead_at).isoformat(sep=" ", timespec="seconds")


def as_dict(letter: DeadLetter, queue: DeadLetterQueue) -> dict[str, Any]:
    """A dead letter as JSON-ready data, with its task when the payload decodes."""
    task = describe(letter, queue.codec)
    return {
        "id": letter.message_id,
        "queue": queue.queue,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "last_error": letter.last_error,
        "dead_at": letter.dead_at,
        "task": None
        if task is None
        else {
            "id": task.id,
            "name": task.label,
            "func": task.func,
            "args": repr(task.args),
            "kwargs": repr(task.kwargs),
            "group": task.group,
        },
        "payload": letter.payload.hex(),
    }


@click.group()
def dlq() -> None:
    """Dead letters: tasks past max_attempts and payloads that failed their check."""


def fail_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    """The command line's one-line errors (``qframe.cli.fail_cleanly``, looked up when called)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from qframe.cli import fail_cleanly as one_line_errors  # qframe.cli imports this module

        return one_line_errors(func)(*args, **kwargs)

    return wrapper


@dlq.command("list")
@cluster_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (payloads as hex).")
@click.pass_context
@fail_cleanly
def list_letters(ctx: click.Context, cluster_name: str | None, as_json: bool) -> None:
    """One line per dead letter: id, when, task, attempts, size, reason."""
    queue = open_queue(ctx, cluster_name)
    letters = queue.letters()
    if as_json:
        click.echo(json.dumps([as_dict(letter, queue) for letter in letters], indent=2))
        return
    for letter in letters:
        task = describe(letter, queue.codec)
        fields = (
            letter.message_id,
            when(letter),
            task.func if task is not None else "-",
            f"{letter.attempts} attempts",
            f"{len(letter.payload)} bytes",
            letter.reason,
        )
        click.echo("\t".join(fields))


@dlq.command("show")
@click.argument("message_id")
@cluster_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the payload as hex).")
@click.pass_context
@fail_cleanly
def show_letter(ctx: click.Context, message_id: str, cluster_name: str | None, as_json: bool) -> None:
    """Everything kept of one dead letter, and its task when the payload decodes."""
    queue = open_queue(ctx, cluster_name)
    letter = queue.get(message_id)
    data = as_dict(letter, queue)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    task = data.pop("task")
    data.pop("payload")
    data["dead_at"] = when(letter)
    for key, value in data.items():
        click.echo(f"{key}: {value}")
    if task is None:
        click.echo("task: - (the payload does not verify or decode; it cannot be requeued)")
        return
    for key, value in task.items():
        click.echo(f"task.{key}: {value}")


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Progress | None]:
    """A rich progress bar on stderr for ``total`` letters (none for a few), advanced once per letter."""
    if total < PROGRESS_FROM:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress as Bar

    with Bar(console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda _letter: bar.advance(task)


def chosen(
    queue: DeadLetterQueue, ids: Sequence[str], name: str | None, every: bool, choices: str
) -> list[DeadLetter]:
    """The letters a command names; none or a mix of ``choices`` is a usage error naming them."""
    if sum((bool(ids), name is not None, every)) != 1:
        raise click.UsageError(f"give exactly one of {choices}")
    return queue.choose(list(ids) or None, name, every)


@dlq.command("requeue")
@click.argument("ids", nargs=-1)
@click.option("--name", "task_name", help="Requeue the dead letters of this task name or function path.")
@click.option("--all", "every", is_flag=True, help="Requeue every dead letter of the queue.")
@cluster_option
@click.pass_context
@fail_cleanly
def requeue(
    ctx: click.Context, ids: tuple[str, ...], task_name: str | None, every: bool, cluster_name: str | None
) -> None:
    """Enqueue dead letters' tasks again with fresh attempts (ID..., --name NAME or --all).

    A letter is removed only after its task was enqueued. One whose payload does not
    verify or decode is an error when named by id, and skipped (counted) otherwise.
    """
    queue = open_queue(ctx, cluster_name)
    letters = chosen(queue, ids, task_name, every, "ID..., --name NAME or --all")
    with progress_bar("requeueing", len(letters)) as advance:
        done = queue.requeue(letters, skip_undecodable=not ids, progress=advance)
    click.echo(f"requeued {done.requeued} dead letters of queue '{queue.queue}'")
    if done.skipped:
        click.echo(f"skipped {done.skipped} whose payload does not verify or decode (see 'qframe dlq show')")


@dlq.command("purge")
@click.argument("ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Remove every dead letter of the queue.")
@cluster_option
@click.pass_context
@fail_cleanly
def purge(ctx: click.Context, ids: tuple[str, ...], every: bool, cluster_name: str | None) -> None:
    """Remove dead letters for good (ID... or --all)."""
    queue = open_queue(ctx, cluster_name)
    letters = chosen(queue, ids, None, every, "ID... or --all")
    with progress_bar("purging", len(letters)) as advance:
        removed = queue.purge(letters, progress=advance)
    click.echo(f"purged {removed} dead letters of queue '{queue.queue}'")
