"""What every ``qframe`` command shares: reading its settings and reporting qframe errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from qframe.config import Config
from qframe.config import load as load_config
from qframe.errors import QFrameError


def command_config(ctx: click.Context, **overrides: Any) -> Config:
    """The settings of the running command: ``--config FILE``, environment, then ``overrides``.

    A host framework runs a command on its own settings by passing them as click's context
    object (``cli.main(obj=config)``, as ``manage.py qinfo`` does); ``overrides`` then apply on top.
    """
    if isinstance(ctx.obj, Config):
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
