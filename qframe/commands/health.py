"""``qframe health``: exit 0 when a queue's cluster publishes a fresh heartbeat, else 1.

Made for container liveness and readiness probes and for supervisors' health checks: it
reads the signed statuses the sentinels publish (the status store role, see
:mod:`qframe.cluster.stat`), never the broker.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Sequence

import click

from qframe.cluster.stat import Stat, read_statuses
from qframe.commands.common import command_config
from qframe.config import Config
from qframe.errors import BrokerError, QFrameError, StoreError

#: Statuses of a cluster that is going away: never healthy.
ENDING = frozenset({"Stopping", "Stopped"})


def heartbeat_lifetime(config: Config) -> float:
    """Seconds a heartbeat lives in the status store (as the sentinel writes it)."""
    return max(3.0, 3 * config.guard_cycle)


def verdict(stats: Sequence[Stat], queue: str, host: str | None, max_age: float, now: float) -> str | None:
    """Why no cluster of ``queue`` (on ``host``; None: any host) is healthy; None when one is."""
    where = "on any host" if host is None else f"on host {host}"
    mine = [s for s in stats if s.name == queue and (host is None or s.host == host)]
    live = [s for s in mine if s.status not in ENDING]
    if not live:
        if mine:
            latest = max(mine, key=lambda s: s.timestamp)
            return f"the cluster of queue '{queue}' {where} is {latest.status.lower()}"
        return f"no cluster of queue '{queue}' {where} publishes a heartbeat"
    age = now - max(s.timestamp for s in live)
    if age > max_age:
        return f"the last heartbeat of queue '{queue}' {where} is {age:.1f} s old (--max-age {max_age:g} s)"
    return None


@click.command()
@click.option("--name", help="Queue (cluster name) to check [default: the configured name].")
@click.option(
    "--max-age",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a heartbeat may be old [default: its lifetime, 3 guard cycles, at least 3 s].",
)
@click.option("--any-host", is_flag=True, help="Accept a cluster on any host, not only this one.")
@click.pass_context
def health(ctx: click.Context, name: str | None, max_age: float | None, any_host: bool) -> None:
    """Exit 0 when the queue's cluster on this host has a live, fresh heartbeat; else 1 and why."""
    try:
        config = command_config(ctx, name=name)
        stats = read_statuses(config)
    except (StoreError, BrokerError) as exc:
        click.echo(f"qframe: unhealthy: cannot read the cluster statuses: {exc}", err=True)
        sys.exit(1)
    except QFrameError as exc:  # bad settings: not a health verdict
        click.echo(f"qframe: error: {exc}", err=True)
        sys.exit(2)
    problem = verdict(
        stats,
        config.name,
        None if any_host else socket.gethostname(),
        heartbeat_lifetime(config) if max_age is None else max_age,
        time.time(),
    )
    if problem is not None:
        click.echo(f"qframe: unhealthy: {problem}", err=True)
        sys.exit(1)
    click.echo(f"qframe: healthy: queue '{config.name}'")
