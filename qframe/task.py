"""The task package that travels through the broker, and the result record it becomes."""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from qframe.errors import TaskImportError
from qframe.names import humanize
from qframe.stores.base import ResultMeta

if TYPE_CHECKING:
    from qframe.client import Client

#: Keywords of ``async_task`` that are options, never arguments of the task function.
OPTION_NAMES = frozenset(
    {
        "hook",
        "group",
        "timeout",
        "task_name",
        "cluster",
        "save",
        "ack_failure",
        "max_attempts",
        "delay",
        "countdown",
        "eta",
        "sync",
        "retry_on",
        "backoff",
        "retry_delay",
        "max_backoff",
        "jitter",
        "cached",
    }
)


@dataclass
class Task:
    """A unit of work: a function path with its arguments and options."""

    func: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: os.urandom(16).hex())
    name: str = ""
    group: str | None = None
    hook: str | None = None
    timeout: float | None = None
    cluster: str = "default"
    save: bool = True
    ack_failure: bool = True
    max_attempts: int | None = None
    enqueued: float = field(default_factory=time.time)
    #: Dotted paths of the exception types that retry the task (empty: the cluster's).
    retry_on: tuple[str, ...] = ()
    #: ``fixed`` or ``exponential`` (None: the cluster's), with the next three as in Config.
    backoff: str | None = None
    retry_delay: float | None = None
    max_backoff: float | None = None
    jitter: bool | None = None
    #: Runs of this task in earlier messages (retries re-enqueue it with this raised).
    retries: int = 0
    #: The links of its chain after this task, as :meth:`to_dict` data (see :mod:`qframe.chain`).
    chain: tuple[dict[str, Any], ...] = ()
    #: A failure of this link does not stop its chain.
    continue_on_failure: bool = False
    #: How many elements this task's iterator (its group) has; 0: not an element (:mod:`qframe.iterate`).
    iter_count: int = 0
    #: Seconds its result is kept (``cached=``); 0: kept as ``save`` and ``save_limit`` say.
    cached: float = 0.0
    #: Free-form string pairs that travel with the task, for plugins (trace context, tenant ids):
    #: written in ``qframe_pre_enqueue``, read in the worker's execute hooks.
    headers: dict[str, str] = field(default_factory=dict)

    def meta_of(self, record: TaskResult) -> ResultMeta:
        """The store's indexed fields of ``record``, a result of this task (expiring when ``cached``)."""
        meta = record.meta
        return meta._replace(expires=record.stopped + self.cached) if self.cached else meta

    @property
    def label(self) -> str:
        """The task's name, or a human-readable one derived from its id (computed where needed)."""
        return self.name or humanize(self.id)

    def to_dict(self) -> dict[str, Any]:
        """The package as plain data, every field; arguments are not copied."""
        return {**vars(self), "args": list(self.args)}

    def to_message(self) -> dict[str, Any]:
        """The package as the codec sends it: :meth:`to_dict` without the fields at their defaults.

        Most tasks set a few of the two dozen options, so a payload is about a third of
        the full dict, and cheaper to decode in every worker; :meth:`from_dict` fills the
        defaults back in.
        """
        data = {
            "func": self.func,
            "args": list(self.args),
            "kwargs": self.kwargs,
            "id": self.id,
            "enqueued": self.enqueued,
        }
        values = vars(self)
        for name, default in _OPTIONAL_FIELDS:
            value = values[name]
            if value != default:
                data[name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        """Rebuild a task from :meth:`to_dict` or :meth:`to_message` output."""
        fields = {
            **data,
            "args": tuple(data["args"]),
            "retry_on": tuple(data.get("retry_on", ())),
            "chain": tuple(data.get("chain", ())),
        }
        return cls(**fields)


#: Every field of a task a message leaves out at its default, with that default.
_OPTIONAL_FIELDS: tuple[tuple[str, Any], ...] = tuple(
    (f.name, f.default_factory() if callable(f.default_factory) else f.default)
    for f in fields(Task)
    if f.name not in ("func", "args", "kwargs", "id", "enqueued")
)


@dataclass
class TaskResult:
    """What a task left behind: its return value (or error text) and its timings.

    Times are Unix timestamps in seconds: ``enqueued`` when the producer made the task,
    ``started`` and ``stopped`` around the run that produced this record.
    """

    id: str
    name: str
    func: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any
    success: bool
    started: float
    stopped: float
    attempts: int
    cluster: str
    group: str | None
    #: When the task was enqueued (None in a record built without a task).
    enqueued: float | None = None
    #: Dotted path of the task's result hook (None without one).
    hook: str | None = None
    #: The client whose store :meth:`group_result` and friends read (None: the default client).
    client: Client | None = field(default=None, repr=False, compare=False)

    @property
    def time_taken(self) -> float:
        """Seconds the run took, ``stopped - started`` (the time spent queued is not counted)."""
        return self.stopped - self.started

    @property
    def meta(self) -> ResultMeta:
        """The store's indexed fields of this result."""
        return ResultMeta(
            self.id,
            self.name,
            self.func,
            self.group,
            self.success,
            self.started,
            self.stopped,
            self.attempts,
            self.cluster,
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data (what the codec serializes); values are not copied."""
        data = {**vars(self), "args": list(self.args)}
        del data["client"]
        return data

    def _client(self) -> Client:
        from qframe.client import default_client  # the client module imports this one

        return self.client or default_client()

    def group_result(self, failures: bool = False) -> list[Any] | None:
        """The return values of this task's group, in the order they finished; None without a group."""
        return None if self.group is None else self._client().result_group(self.group, failures)

    def group_count(self, failures: bool = False) -> int | None:
        """How many successes (with ``failures=True``, failures) this task's group has; None without one."""
        return None if self.group is None else self._client().count_group(self.group, failures)

    def group_delete(self, tasks: bool = False) -> int | None:
        """Ungroup (``tasks=True``: delete) this task's group's results; how many it had, None without one."""
        return None if self.group is None else self._client().delete_group(self.group, tasks)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskResult:
        """Rebuild a record from :meth:`to_dict` output."""
        return cls(**{**data, "args": tuple(data["args"])})

    @classmethod
    def of(cls, task: Task, result: Any, success: bool, started: float, attempts: int) -> TaskResult:
        """The record of one run (or one failure to run) of ``task``, stopping now."""
        return cls(
            task.id,
            task.label,
            task.func,
            task.args,
            task.kwargs,
            result,
            success,
            started,
            time.time(),
            attempts,
            task.cluster,
            task.group,
            task.enqueued,
            task.hook,
        )


def kept(task: Task, record: TaskResult) -> bool:
    """Whether ``record`` goes to the store: a failure, a success unless ``save=False``, any cached one.

    A ``cached`` result is kept for its time even with ``save=False``, as Django Q2 caches
    it whatever its ``save``.
    """
    return task.save or not record.success or bool(task.cached)


def func_path(func: str | Callable[..., Any]) -> str:
    """The dotted import path of a task function, checked to be importable by name."""
    if isinstance(func, str):
        if "." not in func:
            raise TaskImportError(f"task path {func!r} is not a dotted path like 'module.function'")
        return func
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or "<" in qualname:
        raise TaskImportError(f"{func!r} is not importable by name: define tasks at module level")
    if module == "__main__":
        raise TaskImportError(
            f"{qualname} is defined in __main__, which workers cannot import: move it to a module"
        )
    return f"{module}.{qualname}"


def resolve(path: str) -> Callable[..., Any]:
    """Import the callable at a dotted ``path`` (``pkg.module.func`` or ``module.Class.method``)."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            target: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise TaskImportError(f"task path '{path}' does not import: {exc}") from exc
        except Exception as exc:  # the module itself raised while importing
            raise TaskImportError(f"task path '{path}' does not import: {type(exc).__name__}: {exc}") from exc
        try:
            for attribute in parts[split:]:
                target = getattr(target, attribute)
        except AttributeError:
            missing = ".".join(parts[split:])
            raise TaskImportError(
                f"task path '{path}' does not import: no '{missing}' in module '{module_name}'"
            ) from None
        if not callable(target):
            raise TaskImportError(f"task path '{path}' is not callable")
        return target  # type: ignore[no-any-return]
    raise TaskImportError(f"task path '{path}' does not import: no module named '{parts[0]}'")
