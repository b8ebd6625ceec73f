"""Iterators: one task per element of an iterable, collated into one result in input order.

Each element is a task in the iterator's group, its id the iterator's id followed by its
index, and it carries the number of elements (``Task.iter_count``). After an element's
final result is saved, the monitor that saved it counts the group; the one that sees it
complete writes the collated record under the iterator's id (:mod:`qframe.cluster.collate`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from qframe.client import Client, default_client
from qframe.countdown import delay_of
from qframe.errors import InvalidArgument


def element_id(iter_id: str, index: int) -> str:
    """The task id of element ``index`` of iterator ``iter_id`` (hex, like every task id)."""
    return f"{iter_id}{index:08x}"


def element_index(iter_id: str, task_id: str) -> int:
    """The index of the element whose task id is ``task_id`` (the inverse of :func:`element_id`)."""
    return int(task_id[len(iter_id) :], 16)


class Iter:
    """``func`` over ``iterable``, one task per element: ``Iter(f, xs).run()``, then ``.result(wait)``."""

    def __init__(
        self,
        func: str | Callable[..., Any],
        iterable: Iterable[Any] = (),
        cluster: str | None = None,
        client: Client | None = None,
        **options: Any,
    ) -> None:
        self.func = func
        self.arguments: list[Any] = list(iterable)
        self.cluster = cluster
        self.client = client
        self.options = options
        self.id = os.urandom(16).hex()

    def append(self, *args: Any) -> Iter:
        """Add one element (its arguments: one value, or several for a tuple)."""
        self.arguments.append(args[0] if len(args) == 1 else args)
        return self

    def run(self) -> str:
        """Enqueue every element; return the iterator's id (its collated result's id)."""
        if not self.arguments:
            raise InvalidArgument("an iterator needs at least one element")
        for refused in ("group", "save", "sync"):
            if refused in self.options:
                raise InvalidArgument(f"an iterator sets its elements' {refused!r} itself; leave it out")
        client = self.client or default_client()
        options = {**self.options, "group": self.id}
        if self.cluster is not None:
            options["cluster"] = self.cluster
        made = [
            client._make_task(self.func, args if isinstance(args, tuple) else (args,), dict(options))
            for args in self.arguments
        ]
        delay = delay_of(made[0][1])
        for index, (task, _) in enumerate(made):
            task.id, task.iter_count = element_id(self.id, index), len(made)
            client.enqueue(task, delay)
        return self.id

    def result(self, wait: float = 0.0) -> list[Any] | None:
        """The elements' results (error text for a failed one) in input order; None until all finished."""
        client = self.client or default_client()
        value: list[Any] | None = client.result(self.id, wait=wait)
        return value


def async_iter(
    func: str | Callable[..., Any],
    iterable: Iterable[Any],
    cluster: str | None = None,
    client: Client | None = None,
    **options: Any,
) -> str:
    """Run ``func`` once per element of ``iterable``; return the id whose result is the list of them all.

    An element that is a tuple is passed as positional arguments, anything else as the one
    argument. ``result(id, wait=...)`` gives the results in input order once the last
    element finished (a failed element's error text at its place); ``options`` are
    ``async_task``'s (``timeout``, ``max_attempts``, ``retry_on``, ``hook``, ...).
    """
    return Iter(func, iterable, cluster, client, **options).run()
