"""Django Q2's public API on qframe: change ``django_q.tasks`` to ``qframe_django.compat``.

The names and semantics are Django Q2's where they differ from the core's:

- every ``wait`` is in **milliseconds** (``-1`` waits forever), as in Django Q2;
- ``fetch`` and ``fetch_group`` return :class:`~qframe_django.models.Task` rows when the
  results live in the project's database (the ``orm`` store), as Django Q2 does;
- ``Q_CLUSTER['sync']`` (or ``QFRAME_DJANGO['sync']``) makes every ``async_task`` run in
  the calling process;
- ``async_task(..., on_commit=True)`` enqueues when the current transaction commits;
- ``cached=True|seconds`` keeps a result only for a time, as the core's ``cached=`` does
  (``True``: the ``cache_ttl`` option); on the read functions it is accepted and ignored,
  since results are read from the store either way (docs/django.md).
"""

from __future__ import annotations

import ast
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from qframe import asynctask, chain, iterate
from qframe.client import Client
from qframe.cluster.stat import Stat as CoreStat
from qframe.cluster.stat import config_keys
from qframe.drivers import make_store, store_choice
from qframe_django.conf import app_setting, project_config
from qframe_django.models import Failure, Success, Task
from qframe_scheduler.record import Schedule as ScheduleRecord

log = logging.getLogger("qframe.django")

__all__ = [
    "AsyncTask", "Chain", "Failure", "Iter", "Schedule", "Stat", "Success", "Task", "async_chain",
    "async_iter", "async_task", "count_group", "delete_group", "fetch", "fetch_group", "queue_size",
    "result", "result_group", "schedule",
]  # fmt: skip

_client: Client | None = None
_client_lock = threading.Lock()


def client() -> Client:
    """The process's client on the project's Config (built on first use)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = Client(project_config())
        return _client


def forget_client() -> None:
    """Drop the client (after the settings changed, in tests)."""
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None


def seconds(wait: float) -> float:
    """A Django Q2 wait in milliseconds as the core's seconds (``-1``, forever, stays ``-1``)."""
    return -1 if wait == -1 else wait / 1000


def _sync_default(options: dict[str, Any]) -> None:
    if "sync" not in options and app_setting("sync", False):
        options["sync"] = True


def async_task(func: str | Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    """Enqueue ``func(*args, **kwargs)``; return the task id (Django Q2's ``async_task``).

    With ``on_commit=True`` inside a transaction the task is enqueued when it commits and
    None is returned (the id does not exist before the enqueue); outside one it is
    enqueued at once and its id returned.
    """
    on_commit = kwargs.pop("on_commit", False)
    if "broker" in kwargs:
        raise TypeError("async_task(broker=...) is not supported: qframe picks the broker from the settings")
    _sync_default(kwargs)
    if not on_commit:
        return client().async_task(func, *args, **kwargs)
    from django.db import transaction

    made: list[str] = []
    transaction.on_commit(lambda: made.append(client().async_task(func, *args, **kwargs)))
    return made[0] if made else None


def _orm_alias() -> str | None:
    """The database alias of the result store when it is the ``orm`` store, else None."""
    name, url = store_choice(project_config())
    return (url or "default") if name == "orm" else None


def result(task_id: str, wait: float = 0, cached: bool = False) -> Any:
    """The task's return value, waiting ``wait`` ms (-1: forever); None if there is none."""
    return client().result(task_id, seconds(wait))


def fetch(task_id: str, wait: float = 0, cached: bool = False) -> Any:
    """The task's result: a :class:`Task` row with the orm store, else a :class:`qframe.TaskResult`."""
    record = client().fetch(task_id, seconds(wait))
    alias = _orm_alias()
    if record is None or alias is None:
        return record
    return Task.objects.using(alias).filter(id=task_id).first() or record


def result_group(
    group_id: str, failures: bool = False, wait: float = 0, count: int | None = None, cached: bool = False
) -> list[Any]:
    """The group's return values in the order they finished (``wait`` in ms)."""
    return client().result_group(group_id, failures, seconds(wait), count)


def fetch_group(
    group_id: str, failures: bool = True, wait: float = 0, count: int | None = None, cached: bool = False
) -> list[Any]:
    """The group's results (:class:`Task` rows with the orm store) in the order they finished."""
    records = client().fetch_group(group_id, failures, seconds(wait), count)
    alias = _orm_alias()
    if alias is None:
        return records
    rows = {row.id: row for row in Task.objects.using(alias).filter(id__in=[r.id for r in records])}
    return [rows.get(record.id, record) for record in records]


def count_group(group_id: str, failures: bool = False, cached: bool = False) -> int:
    """How many successes (with ``failures=True``: failures) the group has."""
    return client().count_group(group_id, failures)


def delete_group(group_id: str, tasks: bool = False, cached: bool = False) -> int:
    """Take the group's results out of the group, or with ``tasks=True`` delete them."""
    return client().delete_group(group_id, tasks)


def queue_size(broker: Any = None) -> int:
    """Tasks waiting in the project's queue."""
    return client().queue_size()


def schedule(func: str | Callable[..., Any], *args: Any, **kwargs: Any) -> ScheduleRecord:
    """Create a schedule (qframe-scheduler), with Q_CLUSTER's ``catch_up`` and the project's timezone."""
    from django.conf import settings

    from qframe_scheduler import api

    kwargs.setdefault("catch_up", bool(app_setting("catch_up", True)))
    kwargs.setdefault("timezone", getattr(settings, "TIME_ZONE", None) or "UTC")
    kwargs.setdefault("q_config", project_config())
    return api.schedule(func, *args, **kwargs)


def _literal_args(text: Any) -> tuple[Any, ...]:
    """Django Q2's ``Schedule.args``: a Python literal in a string ("1, 'a'"), or a sequence."""
    if text is None or text == "":
        return ()
    if not isinstance(text, str):
        return tuple(text)
    value = ast.literal_eval(text)
    return value if isinstance(value, tuple) else (value,)


def _literal_kwargs(text: Any) -> dict[str, Any]:
    """Django Q2's ``Schedule.kwargs``: ``"a=1, b='x'"`` (or a dict's literal), or a dict."""
    if text is None or text == "":
        return {}
    if not isinstance(text, str):
        return dict(text)
    if text.lstrip().startswith("{"):
        return dict(ast.literal_eval(text))
    call = ast.parse(f"dict({text})", mode="eval").body
    assert isinstance(call, ast.Call)
    return {str(k.arg): ast.literal_eval(k.value) for k in call.keywords}


class ScheduleObjects:
    """``Schedule.objects`` for Django Q2 code: ``create``, ``get``, ``all`` over the schedule store."""

    def create(self, func: str, **fields: Any) -> ScheduleRecord:
        """Create a schedule from Django Q2's model fields (``args``/``kwargs`` as strings too)."""
        args = _literal_args(fields.pop("args", None))
        kwargs = _literal_kwargs(fields.pop("kwargs", None))
        kwargs.update(fields.pop("q_options", None) or {})
        return schedule(func, *args, **kwargs, **fields)

    def all(self) -> list[ScheduleRecord]:
        """Every schedule."""
        from qframe_scheduler import api

        return api.list_schedules(project_config())

    def get(self, name: str) -> ScheduleRecord:
        """The schedule called ``name`` (InvalidArgument if there is none)."""
        from qframe_scheduler import api

        return api.get_schedule(name, project_config())


class Schedule(ScheduleRecord):
    """The scheduler's record with Django Q2's type constants, and ``Schedule.objects``."""

    objects: ClassVar[ScheduleObjects] = ScheduleObjects()


class AsyncTask(asynctask.AsyncTask):
    """Django Q2's ``AsyncTask``: waits in milliseconds, the project's client."""

    def __init__(self, func: str | Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        _sync_default(kwargs)
        super().__init__(func, *args, client=kwargs.pop("client", None) or client(), **kwargs)

    def result(self, wait: float = 0) -> Any:
        """The return value, waiting ``wait`` ms."""
        return super().result(seconds(wait))

    def fetch(self, wait: float = 0) -> Any:
        """The result record, waiting ``wait`` ms."""
        return super().fetch(seconds(wait))

    def result_group(self, failures: bool = False, wait: float = 0, count: int | None = None) -> list[Any]:
        """The group's return values, waiting ``wait`` ms."""
        return super().result_group(failures, seconds(wait), count)

    def fetch_group(self, failures: bool = True, wait: float = 0, count: int | None = None) -> list[Any]:
        """The group's result records, waiting ``wait`` ms."""
        return super().fetch_group(failures, seconds(wait), count)


class Chain(chain.Chain):
    """Django Q2's ``Chain(chain=None, group=None, cached=..., sync=...)``: waits in milliseconds."""

    def __init__(
        self,
        chain: Sequence[Any] | None = None,
        group: str | None = None,
        cached: bool | float = False,
        sync: bool = False,
        cluster: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            list(chain or ()),
            group,
            cluster,
            client=options.pop("client", None) or client(),
            cached=cached,
            **options,
        )
        self.sync = sync or bool(app_setting("sync", False))

    def run(self) -> str:
        """Enqueue the first link; with ``sync``, run every link here, in order, in the chain's group."""
        if not self.sync:
            return super().run()
        runner = self.client or client()
        for link in self.links:
            func, args, kwargs = (*link, (), {})[:3]
            options = {"group": self.group, "sync": True, "save": self.save}
            runner.async_task(func, *args, q_options=options, **dict(kwargs))
        return self.group

    def result(self, wait: float = 0) -> list[Any]:
        """The links' return values in chain order, waiting ``wait`` ms."""
        return super().result(seconds(wait))


def async_chain(chain: Sequence[Any], group: str | None = None, cached: bool | float = False,
                sync: bool = False, broker: Any = None, cluster: str | None = None) -> str:  # fmt: skip
    """Run ``chain`` (``(func, args, kwargs)`` links) one after another; return its group id."""
    return Chain(chain, group, cached, sync, cluster).run()


class Iter(iterate.Iter):
    """Django Q2's ``Iter``: ``Iter(func, args=None, kwargs=None, cached=..., sync=..., broker=None)``."""

    def __init__(self, func: str | Callable[..., Any], args: Iterable[Any] | None = None,
                 kwargs: dict[str, Any] | None = None, cached: bool | float = False, sync: bool = False,
                 broker: Any = None, cluster: str | None = None) -> None:  # fmt: skip
        options = dict(kwargs or {})
        if cached:
            options["cached"] = cached
        if sync or ("sync" not in options and app_setting("sync", False)):
            options["sync"] = True
        super().__init__(func, list(args or ()), cluster, client(), **options)

    def result(self, wait: float = 0) -> list[Any] | None:
        """The collated results in input order, waiting ``wait`` ms."""
        return super().result(seconds(wait))


def async_iter(func: str | Callable[..., Any], args_iter: Iterable[Any], **kwargs: Any) -> str:
    """Run ``func`` over every element of ``args_iter``; return the iterator's id (its result's id)."""
    kwargs.pop("broker", None)
    return Iter(func, args_iter, kwargs, sync=bool(kwargs.pop("sync", False))).run()


class Stat(CoreStat):
    """Django Q2's ``Stat`` with ``Stat.get_all()``: every live cluster of the project."""

    @classmethod
    def get_all(cls, broker: Any = None) -> list[CoreStat]:
        """The statuses of every running cluster (any queue) that verify with the project's keys."""
        config = project_config()
        store = make_store(config)
        try:
            return CoreStat.all(store, config_keys(config))
        finally:
            store.close()
