"""``qframe memory``: each cluster's memory, as measured by its sentinel and carried in its heartbeat.

The command may run on another host than the clusters, so it reads what each cluster
measured itself (psutil, every ``guard_cycle``): the host's available and total memory,
the lowest available seen since the cluster started, and the RSS of the sentinel,
pusher, monitor and workers.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from qframe.cluster.stat import Stat
from qframe.commands.common import command_config, fail_cleanly
from qframe.commands.live import print_once, run_live
from qframe.commands.snapshot import Snapshots
from qframe.commands.view import mib
from qframe.errors import QFrameError

if TYPE_CHECKING:  # rich loads only when something is drawn: cluster processes never need it
    from rich.console import RenderableType
    from rich.text import Text

#: Sizes are in MiB; ``workers`` is the sum of the workers' RSS.
COLUMNS = (
    "host",
    "cluster",
    "queue",
    "available %",
    "available",
    "total",
    "sentinel",
    "pusher",
    "monitor",
    "workers",
    "lowest available",
)
WORKER_COLUMNS = ("host", "cluster", "worker pid", "RSS")


@click.command()
@click.option("--workers", "per_worker", is_flag=True, help="Also show each worker's RSS.")
@click.option("--run-once", is_flag=True, help="Print one frame and exit (for scripts).")
@click.pass_context
@fail_cleanly
def memory(ctx: click.Context, per_worker: bool, run_once: bool) -> None:
    """Memory of every cluster: the host's available and total, each process's RSS; q quits."""
    snapshots = Snapshots(command_config(ctx))
    try:
        if run_once:
            print_once(memory_frame(snapshots.clusters(), per_worker))
        else:
            run_live(lambda: live_frame(snapshots, per_worker))
    finally:
        snapshots.close()


def live_frame(snapshots: Snapshots, per_worker: bool) -> RenderableType:
    """A frame; an unreachable store shows as a line, and the next frame tries again."""
    from rich.console import Group
    from rich.text import Text

    try:
        frame = memory_frame(snapshots.clusters(), per_worker)
    except QFrameError as exc:
        snapshots.close()
        return Text(f"cannot read the cluster statuses: {exc}", style="red")
    return Group(frame, Text("q quits", style="dim"))


def memory_frame(clusters: list[Stat], per_worker: bool) -> RenderableType:
    """The table of clusters and, with ``per_worker``, the table of workers."""
    from rich.console import Group
    from rich.table import Table

    title = f"qframe memory (MiB): {len(clusters)} cluster(s) at {time.strftime('%H:%M:%S')}"
    table = Table(title=title, title_justify="left")
    for column in COLUMNS:
        numeric = column not in ("host", "cluster", "queue")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column == "cluster")
    for stat in clusters:
        table.add_row(*cluster_row(stat))
    if not per_worker:
        return table
    workers = Table(title="workers (MiB)", title_justify="left")
    for column in WORKER_COLUMNS:
        workers.add_column(column, justify="left" if column in ("host", "cluster") else "right")
    for stat in clusters:
        for pid in stat.workers:
            workers.add_row(stat.host, stat.label, str(pid), rss(stat, pid))
    return Group(table, workers)


def rss(stat: Stat, pid: int) -> str:
    """The RSS the cluster measured for ``pid``, in MiB; ``-`` when it has none (yet)."""
    size = stat.rss.get(str(pid))
    return "-" if size is None else mib(size)


def cluster_row(stat: Stat) -> list[str | Text]:
    """One cluster's cells, in the order of :data:`COLUMNS`."""
    from rich.text import Text

    if not stat.memory_total:  # a cluster of a version that does not measure memory
        return [stat.host, stat.label, stat.name, *("-" for _ in COLUMNS[3:])]
    share = 100 * stat.memory_available / stat.memory_total
    workers = sum(stat.rss.get(str(pid), 0) for pid in stat.workers)
    return [
        stat.host,
        stat.label,
        stat.name,
        Text(f"{share:.1f}", style="red" if share < 10 else ""),
        mib(stat.memory_available),
        mib(stat.memory_total),
        rss(stat, stat.sentinel),
        rss(stat, stat.pusher),
        rss(stat, stat.monitor),
        mib(workers),
        mib(stat.memory_lowest_available),
    ]
