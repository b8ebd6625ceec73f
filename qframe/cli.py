"""The ``qframe`` command line: cluster, info, enqueue, result, dead-letters, plugins."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

import qframe
from qframe import drivers
from qframe.client import Client
from qframe.cluster.deadletters import list_dead_letters
from qframe.cluster.stat import Stat, config_keys
from qframe.config import Config, env_name
from qframe.config import load as load_config
from qframe.convert import describe, show
from qframe.errors import QFrameError
from qframe.hooks import Hooks
from qframe.log import configure as configure_logging
from qframe.options import PluginOption
from qframe.plugins import list_plugins, make_plugin_manager
from qframe.project import add_to_sys_path
from qframe.task import resolve


def _config(ctx: click.Context, **overrides: Any) -> Config:
    if isinstance(ctx.obj, Config):  # a host framework's own settings (manage.py qinfo): cli.main(obj=config)
        changes = {key: value for key, value in overrides.items() if value is not None}
        return ctx.obj.replace(**changes) if changes else ctx.obj
    params = ctx.find_root().params
    return load_config(overrides, config_file=params.get("config_file"))


def fail_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn qframe errors into one ``qframe: error: ...`` line and exit code 2."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QFrameError as exc:
            for line in str(exc).splitlines():
                click.echo(f"qframe: error: {line}", err=True)
            sys.exit(2)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@click.group()
@click.version_option(qframe.__version__, prog_name="qframe")
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="A qframe.toml or pyproject.toml."
)
def cli(config_file: str | None) -> None:
    """qframe: a distributed task queue."""


@cli.command()
@click.option("--name", help="Cluster (queue) name [env QFRAME_CLUSTER_NAME].")
@click.option("--workers", type=int, help="Worker processes [env QFRAME_WORKERS].")
@click.option("--broker", help="Broker driver name or module:Class [env QFRAME_BROKER].")
@click.option("--broker-url", help="Broker location [env QFRAME_BROKER_URL].")
@click.option("--timeout", type=float, help="Seconds a task may run [env QFRAME_TIMEOUT].")
@click.pass_context
@fail_cleanly
def cluster(ctx: click.Context, **overrides: Any) -> None:
    """Start a cluster in the foreground; SIGTERM or Ctrl-C stops it."""
    from qframe.cluster.cluster import Cluster

    sys.path.insert(0, os.getcwd())  # tasks.py and plugin_modules beside the cluster import by dotted path
    config = _config(ctx, **overrides)
    configure_logging(config.log_level)
    sys.exit(Cluster(config).run())


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@fail_cleanly
def info(ctx: click.Context, as_json: bool) -> None:
    """Clusters, queue sizes and task counts."""
    config = _config(ctx)
    broker = drivers.make_broker(config)
    store = drivers.make_store(config)
    clusters = Stat.all(store, config_keys(config))
    now = time.time()
    hour, minute, second = store.tally(now - 3600), store.tally(now - 60), store.tally(now - 1)
    total = store.tally()
    done = total.successes + total.failures
    report = {
        "queue": config.name,
        "broker": broker.info(),
        "clusters": [{**vars(stat), "label": stat.label} for stat in clusters],
        "queued": broker.queue_size(),
        "leased": broker.lock_size(),
        "dead_letters": len(list_dead_letters(broker, store)),
        "successes": total.successes,
        "failures": total.failures,
        "tasks_per_second": second.successes + second.failures,
        "tasks_per_minute": minute.successes + minute.failures,
        "tasks_per_hour": hour.successes + hour.failures,
        "average_seconds": total.busy / done if done else 0.0,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"qframe clusters on {report['broker']}")
    # the four-word names are what the clusters' log lines say: never cut them short
    table.add_column("cluster", no_wrap=True, min_width=max((len(s.label) for s in clusters), default=7))
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
    console.print(table)
    for key in (
        "queued",
        "leased",
        "dead_letters",
        "successes",
        "failures",
        "tasks_per_second",
        "tasks_per_minute",
        "tasks_per_hour",
    ):
        console.print(f"{key.replace('_', ' ')}: {report[key]}")
    console.print(f"average time: {report['average_seconds']:.4f} s")


@cli.command()
@click.argument("func")
@click.argument("args", required=False, default="[]")
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments as a JSON object.")
@click.option("--cluster", "cluster_name", help="Queue to send to.")
@click.pass_context
@fail_cleanly
def enqueue(ctx: click.Context, func: str, args: str, kwargs_json: str, cluster_name: str | None) -> None:
    """Enqueue FUNC (a dotted path) with ARGS (a JSON list); print the task id."""
    try:
        arguments, kwargs = json.loads(args), json.loads(kwargs_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None
    if not isinstance(arguments, list) or not isinstance(kwargs, dict):
        raise click.BadParameter("ARGS must be a JSON list and --kwargs a JSON object")
    sys.path.insert(0, os.getcwd())
    resolve(func)  # a path that does not import is refused before anything is enqueued
    client = Client(_config(ctx))
    click.echo(client.async_task(func, *arguments, q_options={"cluster": cluster_name}, **kwargs))


@cli.command()
@click.argument("task_id")
@click.option("--wait", type=float, default=0.0, help="Seconds to wait for the result.")
@click.pass_context
@fail_cleanly
def result(ctx: click.Context, task_id: str, wait: float) -> None:
    """Print a task's result record as JSON (exit 1 if there is none yet)."""
    record = Client(_config(ctx)).fetch(task_id, wait=wait)
    if record is None:
        click.echo(f"qframe: no result for task {task_id}", err=True)
        sys.exit(1)
    click.echo(json.dumps(vars(record), indent=2, default=repr))


@cli.command("dead-letters")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (payloads as hex).")
@click.pass_context
@fail_cleanly
def dead_letters(ctx: click.Context, as_json: bool) -> None:
    """Messages moved aside (bad signature, undecodable): id, reason and size."""
    config = _config(ctx)
    letters = list_dead_letters(drivers.make_broker(config), functools.partial(drivers.make_store, config))
    if as_json:
        rows = [{"id": m, "reason": r, "payload": p.hex()} for m, r, p in letters]
        click.echo(json.dumps(rows, indent=2))
        return
    for message_id, reason, payload in letters:
        click.echo(f"{message_id}\t{len(payload)} bytes\t{reason}")


@cli.command()
@click.option("--markdown", is_flag=True, help="Print only the plugins' options, as a Markdown table.")
@click.pass_context
@fail_cleanly
def plugins(ctx: click.Context, markdown: bool) -> None:
    """Installed hook plugins, the options they declare, and every driver by group."""
    config = _config(ctx)
    if markdown:
        click.echo(option_table(config.declared_options))
        return
    click.echo("hook plugins:")
    pm = make_plugin_manager(config)
    listing = list_plugins(pm)
    for name, hooks in listing:
        click.echo(f"  {name}: {', '.join(hooks) or '(no hooks)'}")
    for name, problem in pm.broken.items():
        click.echo(f"  {name}: broken, not loaded: {problem}")
    if not listing and not pm.broken:
        click.echo("  (none)")
    click.echo("plugin options:")
    for option in config.declared_options:
        details = f"{describe(option.type)}, default {show(option.default)}, env {env_name(option.key)}"
        click.echo(f"  {option.key} ({details}): {option.help}")
    if not config.declared_options:
        click.echo("  (none)")
    for kind, group in drivers.GROUPS.items():
        click.echo(f"{group}: {', '.join(drivers.available(kind)) or '(none)'}")


def option_table(options: tuple[PluginOption, ...]) -> str:
    """``options`` as rows of the option table in ``docs/configuration.md``."""
    rows = [
        "| option | type | default | environment | meaning |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| `{o.key}` | {describe(o.type)} | `{show(o.default)}` | `{env_name(o.key)}` | {o.help} |"
            for o in options
        ),
    ]
    return "\n".join(rows)


def main() -> None:
    """Entry point of the ``qframe`` script: let plugins add commands, then run."""
    configure_logging("WARNING")  # warnings while loading the settings get the usual line format
    add_to_sys_path(Path.cwd())  # modules beside the command import, as plugin_modules and tasks
    try:
        config = load_config(environ=os.environ, cwd=Path.cwd())
        Hooks(make_plugin_manager(config)).register_commands(cli)
    except QFrameError:
        pass  # the chosen command reports the configuration problem itself
    except Exception as exc:  # a plugin that fails must not take the whole command line down
        click.echo(
            f"qframe: warning: a plugin failed to add its commands: {type(exc).__name__}: {exc}", err=True
        )
    cli(prog_name="qframe")
