"""``qframe monitor``: every cluster of every queue at a glance, redrawn every second.

One row per cluster, from the clusters' heartbeats in the status store (so it works
with every broker): host, name, queue, state, pool, prefetched tasks, results waiting
to be saved, reincarnations, uptime and tasks per second. The footer has the
configured queue's broker and counts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from qframe.cluster.stat import Stat
from qframe.commands.common import command_config, fail_cleanly
from qframe.commands.live import print_once, run_live
from qframe.commands.snapshot import QueueCounts, Snapshots
from qframe.commands.view import duration, state
from qframe.errors import QFrameError

if TYPE_CHECKING:  # rich loads only when something is drawn: cluster processes never need it
    from rich.console import RenderableType
    from rich.text import Text

COLUMNS = (
    "host",
    "cluster",
    "queue",
    "state",
    "pool",
    "prefetched",
    "results pending",
    "reincarnations",
    "uptime",
    "tasks/s",
)


@click.command()
@click.option("--run-once", is_flag=True, help="Print one frame and exit (for scripts).")
@click.pass_context
@fail_cleanly
def monitor(ctx: click.Context, run_once: bool) -> None:
    """A live view of every cluster and the queue; q quits."""
    snapshots = Snapshots(command_config(ctx))
    try:
        if run_once:
            print_once(monitor_frame(snapshots.clusters(), snapshots.counts(), live=False))
        else:
            run_live(lambda: live_frame(snapshots))
    finally:
        snapshots.close()


def live_frame(snapshots: Snapshots) -> RenderableType:
    """A frame; an unreachable broker or store shows in the footer, and the next frame tries again."""
    from rich.console import Group
    from rich.text import Text

    try:
        return monitor_frame(snapshots.clusters(), snapshots.counts(), live=True)
    except QFrameError as exc:
        snapshots.close()
        return Group(Text("qframe monitor", style="bold"), Text(f"cannot read the queue: {exc}", style="red"))


def monitor_frame(clusters: list[Stat], counts: QueueCounts, live: bool) -> RenderableType:
    """The table of clusters and the footer."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    title = f"qframe monitor: {len(clusters)} cluster(s) at {time.strftime('%H:%M:%S')}"
    table = Table(title=title, title_justify="left", expand=False)
    for column in COLUMNS:
        numeric = column not in ("host", "cluster", "queue", "state")
        # the four-word names are what the clusters' log lines say: never cut them short
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column == "cluster")
    for stat in clusters:
        table.add_row(*cluster_row(stat))
    footer = Text.assemble(
        (f"queue {counts.queue}", "bold"),
        f" on {counts.broker}\n",
        f"queued {counts.queued} (leased {counts.leased})   successes {counts.successes}   ",
        ("failures ", ""),
        (str(counts.failures), "red" if counts.failures else ""),
        "   dead letters ",
        (str(counts.dead_letters), "red" if counts.dead_letters else ""),
    )
    parts: list[RenderableType] = [table, footer]
    if live:
        parts.append(Text("q quits", style="dim"))
    return Group(*parts)


def cluster_row(stat: Stat) -> list[str | Text]:
    """One cluster's cells, in the order of :data:`COLUMNS`."""
    from rich.text import Text

    alive = len(stat.workers)
    wanted = stat.configured_workers or alive
    pool = Text(f"{alive}/{wanted}", style="bold red" if alive < wanted else "")
    return [
        stat.host,
        stat.label,
        stat.name,
        state(stat.status),
        pool,
        str(stat.prefetched),
        Text(str(stat.results_pending), style="yellow" if stat.results_pending else ""),
        Text(str(stat.reincarnations), style="yellow" if stat.reincarnations else ""),
        duration(stat.uptime),
        f"{stat.tasks_per_second:.1f}",
    ]
