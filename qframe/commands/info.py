"""``qframe info``: a one-shot summary of the clusters and the queue, or the effective configuration."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from qframe.cluster.stat import Stat
from qframe.commands.common import command_config, fail_cleanly
from qframe.commands.settings import effective_settings, setting_lines
from qframe.commands.snapshot import QueueCounts, Snapshots

#: The counts printed under the table, in order.
COUNT_LINES = (
    "queued",
    "leased",
    "dead_letters",
    "successes",
    "failures",
    "tasks_per_second",
    "tasks_per_minute",
    "tasks_per_hour",
)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--config", "show_config", is_flag=True, help="Print the effective configuration (secrets masked)."
)
@click.pass_context
@fail_cleanly
def info(ctx: click.Context, as_json: bool, show_config: bool) -> None:
    """Clusters, queue sizes and task counts; or, with --config, the settings in effect."""
    config = command_config(ctx)
    if show_config:
        settings = effective_settings(config)
        click.echo(
            json.dumps(settings, indent=2, default=str) if as_json else "\n".join(setting_lines(settings))
        )
        return
    snapshots = Snapshots(config)
    try:
        clusters, counts = snapshots.clusters(), snapshots.counts()
    finally:
        snapshots.close()
    if as_json:
        click.echo(json.dumps(report(clusters, counts), indent=2, default=str))
    else:
        print_summary(clusters, counts)


def report(clusters: list[Stat], counts: QueueCounts) -> dict[str, Any]:
    """The ``--json`` object: the queue's counts and every cluster's status with its ``label``."""
    fields = dataclasses.asdict(counts)
    return {
        "queue": fields.pop("queue"),
        "broker": fields.pop("broker"),
        "clusters": [{**dataclasses.asdict(stat), "label": stat.label} for stat in clusters],
        **fields,
    }


def print_summary(clusters: list[Stat], counts: QueueCounts) -> None:
    """The table of clusters, then the queue's counts."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from qframe.commands.live import print_once

    table = Table(title=f"qframe clusters on {counts.broker}")
    # the four-word names are what the clusters' log lines say: never cut them short
    table.add_column("cluster", no_wrap=True)
    for column in ("queue", "host", "status", "workers", "uptime (s)", "reincarnations"):
        table.add_column(column)
    for stat in clusters:
        table.add_row(
            stat.label,
            stat.name,
            stat.host,
            stat.status,
            str(len(stat.workers)),
            f"{stat.uptime:.0f}",
            str(stat.reincarnations),
        )
    lines = [f"{key.replace('_', ' ')}: {getattr(counts, key)}" for key in COUNT_LINES]
    lines.append(f"average time: {counts.average_seconds:.4f} s")
    print_once(Group(table, Text("\n".join(lines))))
