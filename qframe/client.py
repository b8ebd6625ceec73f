"""The producer side: enqueue tasks and read their results.

:class:`Client` is built from a :class:`~qframe.config.Config`; the module-level functions
(``qframe.async_task`` and friends) use a default client built lazily from the project's
config file and ``QFRAME_*`` environment variables, once per process.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pluggy

from qframe.brokers.base import Broker
from qframe.caching import cache_seconds
from qframe.config import Config
from qframe.config import load as load_config
from qframe.countdown import delay_of
from qframe.drivers import key_file, make_broker, make_store, store_choice
from qframe.errors import BrokerError, ConfigError, InvalidArgument, PayloadTooLarge
from qframe.hooks import Hooks
from qframe.letters import DeadLetterQueue
from qframe.plugins import make_plugin_manager
from qframe.project import warn_if_new_database
from qframe.retry_options import retry_fields
from qframe.serialize import Codec, result_codec, secret_keys
from qframe.stores.base import DeadLetter, Store
from qframe.stores.delays import DelayStore
from qframe.task import OPTION_NAMES, Task, TaskResult, func_path, kept, resolve
from qframe.typos import check_task_keywords, unknown_options
from qframe.waiting import slices, wait_limit

TaskFunc = str | Callable[..., Any]

#: The message id ``qframe_post_enqueue`` receives for a task held in the store (long delay).
HELD_PREFIX = "held:"
#: Seconds between two looks for a result by task name while ``fetch`` waits.
NAME_POLL = 1.0


class Client:
    """Enqueues tasks to a cluster's queue and reads results from its store (thread-safe)."""

    def __init__(self, config: Config | None = None, pm: pluggy.PluginManager | None = None) -> None:
        self.config = config or load_config()
        self.pm = pm or make_plugin_manager(self.config)
        self.hooks = Hooks(self.pm)
        self._local = threading.local()
        self._keys: list[str] | None = None
        self._result_codec: Codec | None = None
        self._enqueue_hooks = self.hooks.implemented("pre_enqueue", "post_enqueue")
        if pm is None:  # a Client given a plugin manager belongs to a process that configured it
            self.hooks.configure(self.config)

    # -- connections (one per thread, per queue) ----------------------------------------
    def _queue(self, cluster: str | None) -> tuple[Config, Broker, Codec]:
        name = cluster or self.config.name
        cache: dict[str, tuple[Config, Broker, Codec]] = self._local.__dict__.setdefault("queues", {})
        if name not in cache:
            config = self.config.for_cluster(name)
            warn_if_new_database(config)
            broker = make_broker(config)
            if self._keys is None:
                self._keys = secret_keys(
                    config.secret_key, config.secret_key_fallbacks, key_file(config), config.broker
                )
            codec = Codec(self._keys, name, config.serializer, config.compress)
            cache[name] = (config, broker, codec)
        return cache[name]

    @property
    def store(self) -> Store:
        """This thread's connection to the result store."""
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            if store_choice(self.config)[1] == self.config.broker_url:  # the store is in the broker's file
                warn_if_new_database(self.config)
            store = self._local.store = make_store(self.config)
        return store

    def _store_for(self, config: Config) -> Store:
        """This thread's connection to the store of the cluster ``config`` describes."""
        if store_choice(config) == store_choice(self.config):
            return self.store
        cache: dict[str, Store] = self._local.__dict__.setdefault("stores", {})
        if config.name not in cache:
            cache[config.name] = make_store(config)
        return cache[config.name]

    # -- enqueueing ----------------------------------------------------------------------
    def async_task(self, func: TaskFunc, *args: Any, **kwargs: Any) -> str:
        """Enqueue ``func(*args, **kwargs)`` and return the task id.

        Option keywords (``hook``, ``group``, ``timeout``, ``task_name``, ``cluster``,
        ``save``, ``ack_failure``, ``max_attempts``, ``delay``/``countdown``/``eta``, ``sync``,
        ``cached``, the retry options)
        configure the task and are never passed to ``func``; pass ``q_options={...}`` to give them to ``func``
        instead. ``sync=True`` runs the task here and now, as Django Q2 does (for tests).
        A payload over the broker's ``max_payload`` raises :class:`PayloadTooLarge`; a
        ``delay`` over its ``max_delay`` is held in the result store until it fits.
        """
        task, options = self._make_task(func, args, kwargs)
        delay = delay_of(options)
        if options.get("sync"):
            return self._run_here(task)
        return self.enqueue(task, delay)

    def enqueue(self, task: Task, delay: float = 0.0) -> str:
        """Enqueue a ready-made :class:`Task` (after ``delay`` s) and return its id."""
        config, broker, codec = self._queue(task.cluster)
        if self._enqueue_hooks:
            self.hooks.pre_enqueue(task)
        payloads = self._encode_checked(config, broker, codec, [task])
        [message_id] = self._send(config, broker, payloads, delay)
        if self._enqueue_hooks:
            self.hooks.post_enqueue(task, message_id)
        return task.id

    def async_tasks(self, func: TaskFunc, arguments: Iterable[Sequence[Any]], **options: Any) -> list[str]:
        """Enqueue ``func(*args)`` for each ``args`` in ``arguments`` in one batch; return the ids.

        Every payload is checked against the broker's ``max_payload`` before any is stored.
        """
        if set(options) - OPTION_NAMES - {"q_options"}:
            raise TypeError(unknown_options(set(options) - OPTION_NAMES))
        made = [self._make_task(func, tuple(args), dict(options)) for args in arguments]
        if not made:
            return []
        tasks, settings = [task for task, _ in made], made[0][1]
        delay = delay_of(settings)
        if settings.get("sync"):
            return [self._run_here(task) for task in tasks]
        config, broker, codec = self._queue(tasks[0].cluster)
        if self._enqueue_hooks:
            for task in tasks:
                self.hooks.pre_enqueue(task)
        payloads = self._encode_checked(config, broker, codec, tasks)
        message_ids = self._send(config, broker, payloads, delay)
        if self._enqueue_hooks:
            for task, message_id in zip(tasks, message_ids, strict=True):
                self.hooks.post_enqueue(task, message_id)
        return [task.id for task in tasks]

    def _encode_checked(self, config: Config, broker: Broker, codec: Codec, tasks: list[Task]) -> list[bytes]:
        """Sign every task; refuse the whole batch if one payload is over ``max_payload``."""
        payloads = [self._encode(codec, task) for task in tasks]
        limit = type(broker).max_payload
        for task, payload in zip(tasks, payloads, strict=True):
            if limit is not None and len(payload) > limit:
                raise PayloadTooLarge(
                    f"task {task.func} [{task.label}] is {len(payload)} bytes encoded, more than the "
                    f"{limit} bytes broker '{config.broker}' accepts (max_payload); nothing was enqueued: "
                    "pass a reference to large data instead of the data"
                )
        return payloads

    def _send(self, config: Config, broker: Broker, payloads: list[bytes], delay: float) -> list[str]:
        """Store signed payloads: in the broker, or held in the store past its ``max_delay``."""
        max_delay = type(broker).max_delay
        if delay > 0 and max_delay is not None and delay > max_delay:
            store = self._store_for(config)
            if not isinstance(store, DelayStore):
                raise ConfigError(
                    f"a delay of {delay:g} s is longer than broker '{config.broker}' can hold "
                    f"(max_delay {max_delay:g} s) and store '{store_choice(config)[0]}' cannot hold "
                    "delayed tasks; use a shorter delay or a store that can (sqlite, redis, memory)"
                )
            due = time.time() + delay
            return [HELD_PREFIX + store.hold(broker.queue, payload, due) for payload in payloads]
        if delay > 0 or len(payloads) == 1:
            return [broker.enqueue(payload, delay=delay) for payload in payloads]
        message_ids = broker.enqueue_many(payloads)
        if len(message_ids) != len(payloads):
            raise BrokerError(
                f"broker '{config.broker}' returned {len(message_ids)} message ids for {len(payloads)} "
                "tasks (enqueue_many must return one per payload or raise); some may be queued"
            )
        return message_ids

    def _make_task(
        self, func: TaskFunc, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Task, dict[str, Any]]:
        if "q_options" in kwargs:
            options = dict(kwargs.pop("q_options"))
        else:
            options = {key: kwargs.pop(key) for key in list(kwargs) if key in OPTION_NAMES}
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise TypeError(unknown_options(unknown))
        if callable(func):
            check_task_keywords(func, kwargs)
        hook = options.get("hook")
        cluster = options.get("cluster") or self.config.name
        task = Task(
            func=func_path(func),
            args=args,
            kwargs=kwargs,
            name=options.get("task_name") or "",
            group=options.get("group"),
            hook=func_path(hook) if hook is not None else None,
            timeout=options.get("timeout"),
            cluster=cluster,
            save=options.get("save", True),
            ack_failure=options.get("ack_failure", True),
            max_attempts=options.get("max_attempts"),
            cached=self.cache_seconds(options.get("cached"), cluster),
            **retry_fields(options),
        )
        return task, options

    def cache_seconds(self, cached: Any, cluster: str | None = None) -> float:
        """Seconds a result of ``cluster`` is kept for the ``cached`` option (``True``: its ``cache_ttl``)."""
        if cached is True:
            return cache_seconds(cached, self.config.for_cluster(cluster or self.config.name).cache_ttl)
        return cache_seconds(cached, 0.0)

    def _run_here(self, task: Task) -> str:
        """Run ``task`` in this process now, save its result, call its hook; re-raise its error."""
        started = time.time()
        error: Exception | None = None
        try:
            value: Any = resolve(task.func)(*task.args, **task.kwargs)
            success = True
        except Exception as exc:
            value, success, error = "".join(traceback.format_exception(exc)).rstrip(), False, exc
        record = TaskResult.of(task, value, success, started, 1)
        if kept(task, record):
            self.store.save(task.meta_of(record), self._results().encode(record.to_dict()))
        if task.hook:
            record.client = self
            resolve(task.hook)(record)
        if error is not None:
            raise error
        return task.id

    @staticmethod
    def _encode(codec: Codec, task: Task) -> bytes:
        return codec.encode(task.to_message(), timeout=task.timeout, max_attempts=task.max_attempts)

    # -- results -------------------------------------------------------------------------
    def fetch(self, task_id: str, wait: float = 0.0) -> TaskResult | None:
        """The result record of a task, waiting up to ``wait`` seconds (-1: no limit); None if not there.

        ``task_id`` may also be a task's name: with no result of that id, the most recent
        result of that name is returned (a wait looks for the name once a second).
        """
        limit = wait_limit(wait)
        blob = self._by_id_or_name(task_id)
        for timeout in slices(limit, most=NAME_POLL):
            if blob is not None:
                break
            blob = self.store.wait(task_id, timeout)
            if blob is None:
                blob = self.store.get_by_name(task_id)
        return None if blob is None else self._decode(blob)

    def _by_id_or_name(self, key: str) -> bytes | None:
        blob = self.store.get(key)
        return self.store.get_by_name(key) if blob is None else blob

    def result(self, task_id: str, wait: float = 0.0) -> Any:
        """The return value of a task (the error text if it failed), or None if not there.

        ``task_id`` may be the task's name, as in :meth:`fetch`.
        """
        record = self.fetch(task_id, wait)
        return None if record is None else record.result

    def fetch_group(
        self, group: str, failures: bool = True, wait: float = 0.0, count: int | None = None
    ) -> list[TaskResult]:
        """The result records of a group, in the order they finished.

        ``wait`` seconds (-1: no limit) waits for the group's first result; with ``count``,
        for ``count`` results of the kind returned (failures included unless
        ``failures=False``), without limit when ``wait`` is 0, as in Django Q2.
        """
        self._wait_group(group, failures, wait, count)
        return [self._decode(blob) for blob in self.store.get_group(group, failures)]

    def result_group(
        self, group: str, failures: bool = False, wait: float = 0.0, count: int | None = None
    ) -> list[Any]:
        """The return values of a group, in the order they finished.

        ``wait`` and ``count`` as in :meth:`fetch_group`; here ``count`` counts successes
        unless ``failures=True``.
        """
        return [record.result for record in self.fetch_group(group, failures, wait, count)]

    def _wait_group(self, group: str, failures: bool, wait: float, count: int | None) -> None:
        limit = wait_limit(wait)
        if count is not None:
            if count < 1:
                raise InvalidArgument(f"count must be 1 or more results, got {count!r}")
            limit = limit or math.inf
        target = count or 1
        for timeout in slices(limit):
            if self.store.wait_group(group, target, timeout, failures) >= target:
                return

    def count_group(self, group: str, failures: bool = False) -> int:
        """How many successes a group has; with ``failures=True``, how many failures."""
        return self.store.count_group(group, failures)

    def delete_group(self, group: str, tasks: bool = False) -> int:
        """Remove the group label from a group's results, or with ``tasks=True`` delete them.

        Returns how many results the group had. With ``tasks=False`` (Django Q2's default)
        the results stay readable by task id, but the group no longer lists or counts them.
        """
        return self.store.delete_group(group, tasks)

    def queue_size(self, cluster: str | None = None) -> int:
        """Tasks waiting in a cluster's queue (not counting leased ones)."""
        return self._queue(cluster)[1].queue_size()

    def dead_letter_queue(self, cluster: str | None = None) -> DeadLetterQueue:
        """A cluster's dead letters, to list, requeue or purge (see :mod:`qframe.letters`)."""
        config, broker, codec = self._queue(cluster)
        return DeadLetterQueue(broker, self._store_for(config), codec, self.enqueue)

    def dead_letters(self, cluster: str | None = None) -> list[DeadLetter]:
        """A cluster's dead letters (tasks past max_attempts, bad payloads), oldest first."""
        return self.dead_letter_queue(cluster).letters()

    def requeue(
        self,
        ids: Sequence[str] | None = None,
        *,
        name: str | None = None,
        all: bool = False,
        cluster: str | None = None,
    ) -> int:
        """Enqueue dead letters' tasks again with fresh attempts; return how many were requeued.

        Give the dead letters' ``ids``, a task ``name`` (its ``task_name`` or function path)
        or ``all=True``. A letter whose payload does not verify or decode cannot be
        requeued: named by id it raises :class:`~qframe.letters.NotRequeueable`; with
        ``name`` or ``all`` it is skipped (and logged). Each letter is removed only after
        its task was enqueued.
        """
        letters = self.dead_letter_queue(cluster)
        chosen = letters.choose(ids, name, all)
        return letters.requeue(chosen, skip_undecodable=not ids).requeued

    def _results(self) -> Codec:
        if self._result_codec is None:
            self._queue(None)
            assert self._keys is not None
            self._result_codec = result_codec(self._keys, self.config)
        return self._result_codec

    def _decode(self, blob: bytes) -> TaskResult:
        record = TaskResult.from_dict(self._results().decode(blob))
        record.client = self
        return record

    def close(self) -> None:
        """Close this thread's connections."""
        for _, broker, _ in self._local.__dict__.pop("queues", {}).values():
            broker.close()
        stores = [self._local.__dict__.pop("store", None), *self._local.__dict__.pop("stores", {}).values()]
        for store in stores:
            if store is not None:
                store.close()


_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The process's default client, built on first use from config file and environment."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def forget_default() -> None:
    """Drop the default client (after a fork, or when the environment changed)."""
    global _default
    _default = None


def async_task(func: TaskFunc, *args: Any, **kwargs: Any) -> str:
    """Enqueue a task with the default client; see :meth:`Client.async_task`."""
    return default_client().async_task(func, *args, **kwargs)


def async_tasks(func: TaskFunc, arguments: Iterable[Sequence[Any]], **options: Any) -> list[str]:
    """Enqueue many tasks with the default client; see :meth:`Client.async_tasks`."""
    return default_client().async_tasks(func, arguments, **options)


def result(task_id: str, wait: float = 0.0) -> Any:
    """A task's return value, by id or name; see :meth:`Client.result`."""
    return default_client().result(task_id, wait)


def fetch(task_id: str, wait: float = 0.0) -> TaskResult | None:
    """A task's result record, by id or name; see :meth:`Client.fetch`."""
    return default_client().fetch(task_id, wait)


def result_group(
    group: str, failures: bool = False, wait: float = 0.0, count: int | None = None
) -> list[Any]:
    """A group's return values; see :meth:`Client.result_group`."""
    return default_client().result_group(group, failures, wait, count)


def fetch_group(
    group: str, failures: bool = True, wait: float = 0.0, count: int | None = None
) -> list[TaskResult]:
    """A group's result records; see :meth:`Client.fetch_group`."""
    return default_client().fetch_group(group, failures, wait, count)


def count_group(group: str, failures: bool = False) -> int:
    """A group's successes (or failures); see :meth:`Client.count_group`."""
    return default_client().count_group(group, failures)


def delete_group(group: str, tasks: bool = False) -> int:
    """Ungroup (or delete) a group's results; see :meth:`Client.delete_group`."""
    return default_client().delete_group(group, tasks)


def queue_size(cluster: str | None = None) -> int:
    """Tasks waiting in a queue; see :meth:`Client.queue_size`."""
    return default_client().queue_size(cluster)


def dead_letters(cluster: str | None = None) -> list[DeadLetter]:
    """A cluster's dead letters; see :meth:`Client.dead_letters`."""
    return default_client().dead_letters(cluster)


def requeue(
    ids: Sequence[str] | None = None,
    *,
    name: str | None = None,
    all: bool = False,
    cluster: str | None = None,
) -> int:
    """Requeue dead letters' tasks; see :meth:`Client.requeue`."""
    return default_client().requeue(ids, name=name, all=all, cluster=cluster)
