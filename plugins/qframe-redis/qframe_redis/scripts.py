"""The Lua scripts of the broker and the store, read from ``qframe_redis/lua/*.lua``.

Each script is the shared prelude of its side (``broker_common.lua`` or
``store_common.lua``) followed by its own body, registered once per client with
``register_script`` (EVALSHA, falling back to EVAL after a server restart).
"""

from __future__ import annotations

import contextlib
from functools import cache
from importlib.resources import files
from typing import Any

from redis.commands.core import Script

from qframe.errors import BrokerError, QFrameError
from qframe_redis.connection import Client, connect, translate_errors
from qframe_redis.direct import DirectLine

BROKER_SCRIPTS = ("enqueue", "dequeue", "ack", "nack", "touch", "quarantine", "sizes")
STORE_SCRIPTS = ("save", "group", "delete", "tally", "purge", "held", "byname")


@cache
def source(name: str, prelude: str) -> str:
    """The full text of script ``name``: ``prelude`` then the script's body."""
    folder = files("qframe_redis").joinpath("lua")
    common = folder.joinpath(f"{prelude}.lua").read_text(encoding="utf-8")
    body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return f"{common}\n{body}"


class Scripts:
    """The scripts of one side, registered on one client; call them by name."""

    def __init__(self, client: Client, names: tuple[str, ...], prelude: str) -> None:
        """Register ``names`` (with ``prelude``) on ``client``; nothing is sent yet."""
        self._scripts: dict[str, Script] = {
            name: client.register_script(source(name, prelude)) for name in names
        }

    def __call__(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run script ``name`` with ``keys`` and ``args`` and return its raw reply."""
        return self._scripts[name](keys=keys, args=args)

    def sha(self, name: str) -> str:
        """The SHA1 digest the server knows script ``name`` by."""
        return str(self._scripts[name].sha)


class Link:
    """A broker's or store's redis-py client, connected on first use, with its scripts."""

    def __init__(
        self,
        url: str | None,
        options: dict[str, Any],
        role: str,
        names: tuple[str, ...],
        prelude: str,
        error: type[QFrameError] = BrokerError,
    ) -> None:
        """Describe the link (``role`` names it in errors, raised as ``error``); nothing connects yet."""
        self.url, self.options, self.role, self.error = url, options, role, error
        self.names, self.prelude = names, prelude
        self._client: Client | None = None
        self._direct: DirectLine | None = None
        self._scripts: Scripts | None = None

    @property
    def client(self) -> Client:
        """The redis-py client, connected on first use."""
        if self._client is None:
            self._client = connect(self.url, self.options, self.role, self.error)
        return self._client

    @property
    def direct(self) -> DirectLine:
        """The line of its own for the calls on every task's path (see :mod:`qframe_redis.direct`)."""
        if self._direct is None:
            self._direct = DirectLine(self.client)
        return self._direct

    def command(self, *command: Any) -> Any:
        """The raw reply to one command, on the direct line when it is free."""
        client: Any = self.client  # redis-py leaves execute_command untyped
        return self.direct.call(lambda: client.execute_command(*command), *command)

    def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run script ``name`` (EVALSHA on the direct line), registering the scripts on first use."""
        if self._scripts is None:
            self._scripts = Scripts(self.client, self.names, self.prelude)
        scripts = self._scripts
        return self.direct.call(
            lambda: scripts(name, keys, args), "EVALSHA", scripts.sha(name), len(keys), *keys, *args
        )

    def errors(self) -> contextlib.AbstractContextManager[None]:
        """Turn redis-py errors into one-line errors of the link's class."""
        return translate_errors(self.url, self.role, self.error)

    def close(self) -> None:
        """Release the connections."""
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        if self._client is not None:
            self._client.close()
            self._client = None
            self._scripts = None
