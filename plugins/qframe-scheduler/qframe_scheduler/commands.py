"""``qframe schedule add|list|show|pause|resume|delete|run-now`` and the plugin's option."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Any

import click

from qframe import PluginOption, hookimpl
from qframe.cli import _config, fail_cleanly
from qframe_scheduler import api
from qframe_scheduler.record import Schedule
from qframe_scheduler.types import ScheduleType


@hookimpl
def qframe_add_options() -> list[PluginOption]:
    """The scheduler's one setting: how many due slots one tick runs."""
    return [
        PluginOption(
            "scheduler", "max_per_tick", int, 100, "Most due schedule slots one scheduler tick runs."
        )
    ]


@hookimpl
def qframe_register_commands(cli: click.Group) -> None:
    """Add ``qframe schedule``."""
    cli.add_command(schedule_group)


def _json(text: str, kind: type, what: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, kind):
        raise click.BadParameter(f"{what} must be a JSON {'list' if kind is list else 'object'}")
    return value


def _row(record: Schedule) -> dict[str, Any]:
    values = {key: getattr(record, key) for key in Schedule.__dataclass_fields__ if key != "wall"}
    values["schedule_type"] = record.schedule_type.name
    return values


@click.group("schedule")
def schedule_group() -> None:
    """Create and manage schedules (the qframe-scheduler plugin)."""


@schedule_group.command("add")
@click.argument("name")
@click.argument("func")
@click.argument("args", required=False, default="[]")
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments as a JSON object.")
@click.option("--type", "kind", default="ONCE", help=f"One of {', '.join(t.name for t in ScheduleType)}.")
@click.option("--minutes", type=int, help="Minutes between runs (MINUTES).")
@click.option("--interval", type=float, help="Seconds between runs (INTERVAL).")
@click.option("--cron", help="Cron expression (CRON).")
@click.option("--repeats", type=int, default=-1, help="Runs left; -1 forever.")
@click.option("--next-run", help="First run, ISO 8601 (naive: in --timezone); default now.")
@click.option("--timezone", default="UTC", help="IANA time zone of the schedule.")
@click.option("--cluster", "cluster_name", help="Queue that runs it; default the configured one.")
@click.option("--hook", help="Dotted path of a hook called with each result.")
@click.option("--no-catch-up", is_flag=True, help="After downtime run once, not once per missed slot.")
@click.option("--no-overlap", is_flag=True, help="Skip a slot while the previous run is unfinished.")
@click.option("--intended-date-kwarg", help="Pass the slot's time to the task under this keyword.")
@click.pass_context
@fail_cleanly
def add(ctx: click.Context, name: str, func: str, args: str, kwargs_json: str, **options: Any) -> None:
    """Create schedule NAME running FUNC (a dotted path) with ARGS (a JSON list)."""
    sys.path.insert(0, os.getcwd())
    next_run = options.pop("next_run")
    try:
        first = datetime.fromisoformat(next_run) if next_run else None
    except ValueError:
        raise click.BadParameter(f"--next-run '{next_run}' is not an ISO 8601 time") from None
    record = api.schedule(
        func,
        *_json(args, list, "ARGS"),
        name=name,
        schedule_type=options.pop("kind"),
        next_run=first,
        cluster=options.pop("cluster_name"),
        catch_up=not options.pop("no_catch_up"),
        q_config=_config(ctx),
        **options,
        **_json(kwargs_json, dict, "--kwargs"),
    )
    click.echo(f"{record.name}: next run {record.next_run.isoformat()}")


@schedule_group.command("list")
@click.pass_context
@fail_cleanly
def list_command(ctx: click.Context) -> None:
    """One line per schedule: name, type, next run, enabled."""
    for record in api.list_schedules(_config(ctx)):
        state = "done" if record.repeats == 0 else "enabled" if record.enabled else "paused"
        click.echo(f"{record.name}\t{record.schedule_type.name}\t{record.next_run.isoformat()}\t{state}")


@schedule_group.command("show")
@click.argument("name")
@click.pass_context
@fail_cleanly
def show(ctx: click.Context, name: str) -> None:
    """Print schedule NAME as JSON."""
    click.echo(json.dumps(_row(api.get_schedule(name, _config(ctx))), indent=2, default=str))


@schedule_group.command("pause")
@click.argument("name")
@click.pass_context
@fail_cleanly
def pause(ctx: click.Context, name: str) -> None:
    """Stop running schedule NAME until it is resumed."""
    api.set_enabled(name, False, _config(ctx))


@schedule_group.command("resume")
@click.argument("name")
@click.pass_context
@fail_cleanly
def resume(ctx: click.Context, name: str) -> None:
    """Run schedule NAME again."""
    api.set_enabled(name, True, _config(ctx))


@schedule_group.command("delete")
@click.argument("name")
@click.pass_context
@fail_cleanly
def delete(ctx: click.Context, name: str) -> None:
    """Delete schedule NAME."""
    api.delete_schedule(name, _config(ctx))


@schedule_group.command("run-now")
@click.argument("name")
@click.pass_context
@fail_cleanly
def run_now(ctx: click.Context, name: str) -> None:
    """Enqueue schedule NAME's task now (its next run stays); print the task id."""
    click.echo(api.run_now(name, _config(ctx)))
