"""The ``qframe`` command line: cluster, info, monitor, memory, health, enqueue, result, dlq, plugins."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

import qframe
from qframe import drivers
from qframe.client import Client
from qframe.commands.common import command_config
from qframe.commands.common import fail_cleanly as fail_cleanly  # plugins import it from here
from qframe.commands.dlq import dlq
from qframe.commands.health import health
from qframe.commands.info import info
from qframe.commands.memory import memory
from qframe.commands.monitor import monitor
from qframe.commands.waiting import wait_and_print
from qframe.config import env_name
from qframe.config import load as load_config
from qframe.convert import describe, show
from qframe.errors import QFrameError
from qframe.hooks import Hooks
from qframe.log import configure as configure_logging
from qframe.options import PluginOption
from qframe.plugins import list_plugins, make_plugin_manager
from qframe.project import add_to_sys_path
from qframe.task import resolve

_config = command_config


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
@click.option("--pidfile", type=click.Path(dir_okay=False), help="File for the cluster's pid while it runs.")
@click.pass_context
@fail_cleanly
def cluster(ctx: click.Context, pidfile: str | None, **overrides: Any) -> None:
    """Start a cluster in the foreground; SIGTERM or Ctrl-C stops it."""
    from qframe.commands.cluster import run_cluster

    sys.path.insert(0, os.getcwd())  # tasks.py and plugin_modules beside the cluster import by dotted path
    config = _config(ctx, **overrides)
    configure_logging(config.log_level)
    sys.exit(run_cluster(config, pidfile))


for _command in (info, monitor, memory, health, dlq):
    cli.add_command(_command)


@cli.command()
@click.argument("func")
@click.argument("args", required=False, default="[]")
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments as a JSON object.")
@click.option("--cluster", "cluster_name", help="Queue to send to.")
@click.option("--wait", type=float, help="Then wait up to this many seconds (-1: no limit) for the result.")
@click.pass_context
@fail_cleanly
def enqueue(
    ctx: click.Context, func: str, args: str, kwargs_json: str, cluster_name: str | None, wait: float | None
) -> None:
    """Enqueue FUNC (a dotted path) with ARGS (a JSON list); print the task id (--wait: and the result)."""
    try:
        arguments, kwargs = json.loads(args), json.loads(kwargs_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None
    if not isinstance(arguments, list) or not isinstance(kwargs, dict):
        raise click.BadParameter("ARGS must be a JSON list and --kwargs a JSON object")
    sys.path.insert(0, os.getcwd())
    resolve(func)  # a path that does not import is refused before anything is enqueued
    client = Client(_config(ctx))
    task_id = client.async_task(func, *arguments, q_options={"cluster": cluster_name}, **kwargs)
    click.echo(task_id)
    if wait is not None:
        wait_and_print(client, task_id, wait)


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
    click.echo(json.dumps(record.to_dict(), indent=2, default=repr))


@cli.command("dead-letters")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (payloads as hex).")
@click.pass_context
def dead_letters(ctx: click.Context, as_json: bool) -> None:
    """The dead letters of the queue: an alias of ``qframe dlq list``."""
    from qframe.commands.dlq import list_letters

    ctx.invoke(list_letters, cluster_name=None, as_json=as_json)


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
