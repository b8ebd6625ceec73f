"""qframe: a distributed task queue with a tiny core, pluggy hooks and stevedore drivers.

Enqueue with :func:`async_task`, read results with :func:`result` / :func:`fetch`, run
workers with ``qframe cluster``. Plugins implement hooks from :mod:`qframe.hookspecs`
with :data:`hookimpl` and declare options with :class:`PluginOption`.
"""

from importlib.metadata import PackageNotFoundError, version

from qframe.asynctask import AsyncTask
from qframe.chain import Chain, async_chain
from qframe.client import (
    Client,
    async_task,
    async_tasks,
    count_group,
    dead_letters,
    default_client,
    delete_group,
    fetch,
    fetch_group,
    queue_size,
    requeue,
    result,
    result_group,
)
from qframe.config import Config
from qframe.config import load as load_config
from qframe.current import CurrentTask, Retry, current_task
from qframe.decorator import task
from qframe.hookspecs import hookimpl
from qframe.iterate import Iter, async_iter
from qframe.options import PluginOption
from qframe.schedulers.facade import schedule
from qframe.task import Task, TaskResult

try:
    __version__ = version("qframe")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "AsyncTask",
    "Chain",
    "Client",
    "Config",
    "CurrentTask",
    "Iter",
    "PluginOption",
    "Retry",
    "Task",
    "TaskResult",
    "__version__",
    "async_chain",
    "async_iter",
    "async_task",
    "async_tasks",
    "count_group",
    "current_task",
    "dead_letters",
    "default_client",
    "delete_group",
    "fetch",
    "fetch_group",
    "hookimpl",
    "load_config",
    "queue_size",
    "requeue",
    "result",
    "result_group",
    "schedule",
    "task",
]
