"""Chains: tasks that run one after another, each once the previous one finished.

The links travel in the payload: each task carries the links after it, and the monitor
enqueues the next one (through a :class:`~qframe.client.Client`, so links may target other
clusters) after the finished link's record is saved, and before its delivery is acked. A
failed link stops the chain unless ``continue_on_failure``. Every link is in the chain's
group, so the group's results are the links' in chain order.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

from qframe.client import Client, default_client
from qframe.errors import InvalidArgument
from qframe.task import Task, func_path

#: One link: ``(func,)``, ``(func, args)`` or ``(func, args, kwargs)``.
Link = Sequence[Any]


class Chain:
    """Links to run in order: ``Chain([(f, (1,)), (g, (), {"x": 2})]).run()``, then ``.result(wait)``."""

    def __init__(
        self,
        links: Sequence[Link] = (),
        group: str | None = None,
        cluster: str | None = None,
        save: bool = True,
        continue_on_failure: bool = False,
        client: Client | None = None,
        cached: bool | float = False,
    ) -> None:
        self.links: list[Link] = list(links)
        #: Every link's ``cached`` option (``True``: the cluster's ``cache_ttl``; seconds).
        self.cached = cached
        self.group = group or os.urandom(16).hex()
        self.cluster = cluster
        self.save = save
        self.continue_on_failure = continue_on_failure
        self.client = client

    def append(self, func: str | Callable[..., Any], *args: Any, **kwargs: Any) -> Chain:
        """Add a link; ``cluster=`` among the keywords sends this link to another cluster."""
        self.links.append((func, args, kwargs))
        return self

    def run(self) -> str:
        """Enqueue the first link; return the chain's group id."""
        if not self.links:
            raise InvalidArgument("a chain needs at least one link")
        client = self.client or default_client()
        tasks = [self._task(client, link) for link in self.links]
        rest = tuple(task.to_message() for task in tasks[1:])
        client.enqueue(dataclasses.replace(tasks[0], chain=rest))
        return self.group

    def _task(self, client: Client, link: Link) -> Task:
        if not 1 <= len(link) <= 3:
            raise InvalidArgument(f"a chain link is (func, args, kwargs), got {link!r}")
        func, args, kwargs = (*link, (), {})[:3]
        kwargs = dict(kwargs)
        cluster = kwargs.pop("cluster", None) or self.cluster or client.config.name
        return Task(
            func=func_path(func),
            args=tuple(args),
            kwargs=kwargs,
            group=self.group,
            cluster=cluster,
            save=self.save,
            continue_on_failure=self.continue_on_failure,
            cached=client.cache_seconds(self.cached, cluster),
        )

    def result(self, wait: float = 0.0) -> list[Any]:
        """The links' return values in chain order, waiting up to ``wait`` s for all of them."""
        client = self.client or default_client()
        return client.result_group(self.group, failures=True, wait=wait, count=len(self.links))

    def current(self) -> int:
        """How many links have finished (successes and failures) so far."""
        client = self.client or default_client()
        return client.count_group(self.group) + client.count_group(self.group, failures=True)


def async_chain(
    links: Sequence[Link],
    group: str | None = None,
    cluster: str | None = None,
    save: bool = True,
    continue_on_failure: bool = False,
    client: Client | None = None,
    cached: bool | float = False,
) -> str:
    """Run ``links`` (``(func, args, kwargs)`` each) one after another; return the chain's group id."""
    return Chain(links, group, cluster, save, continue_on_failure, client, cached).run()
