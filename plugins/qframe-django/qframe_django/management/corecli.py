"""Run a command of the core's ``qframe`` CLI with the Django project's Config.

``manage.py qinfo`` is ``qframe info`` on the settings of the project: the core's click
command runs with the project's :class:`~qframe.config.Config` as its context object, so
the output is the core's own. A command the installed core does not have is reported as
not available, naming the commands it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


def run_core_command(name: str, args: Sequence[str] = ()) -> None:
    """``qframe <name> <args>`` with the project's Config; CommandError if it fails or is missing."""
    import click

    from qframe.cli import cli
    from qframe.errors import QFrameError
    from qframe.hooks import Hooks
    from qframe.plugins import make_plugin_manager
    from qframe_django.conf import load_config

    try:
        config = load_config()
        Hooks(make_plugin_manager(config)).register_commands(cli)
    except QFrameError as exc:
        raise CommandError(str(exc).replace("\n", "; ")) from None
    if name not in cli.commands:
        have = ", ".join(sorted(cli.commands))
        raise CommandError(f"'qframe {name}' is not available in the installed qframe (it has: {have})")
    try:
        cli.main(args=[name, *args], prog_name="qframe", obj=config, standalone_mode=False)
    except click.ClickException as exc:
        raise CommandError(exc.format_message()) from None
    except SystemExit as exc:
        if exc.code:
            raise CommandError(f"'qframe {name}' exited with code {exc.code}") from None


class CoreCommand(BaseCommand):
    """A management command that is the core's ``qframe <core_name>``; every argument passes through."""

    #: The core command it runs.
    core_name = ""

    def add_arguments(self, parser: CommandParser) -> None:
        """Arguments for ``call_command``; on the command line everything after the name passes through."""
        parser.add_argument("core_args", nargs="*", help=f"Arguments of 'qframe {self.core_name}'.")

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """A parser that hands every argument it does not know (``--json``) to the core command."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def parse_args(args: Sequence[str] | None = None, namespace: Any = None) -> Any:
            known, unknown = parser.parse_known_args(args, namespace)
            known.core_args = [*known.core_args, *unknown]
            return known

        parser.parse_args = parse_args  # type: ignore[method-assign,assignment]
        return parser

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the core's command (``call_command("qinfo", "--json")``)."""
        run_core_command(self.core_name, options["core_args"])
