"""The hook plugin ``otel``: a producer span per enqueue, continued by a consumer span per run.

The producer's span starts in ``qframe_pre_enqueue`` (a child of whatever span is current
there, e.g. the web request) and ends in ``qframe_post_enqueue``; its context travels in
``task.headers`` as W3C ``traceparent``/``tracestate`` (OpenTelemetry's global
propagator). The worker's span wraps the task function (``qframe_execute_task``), with the
producer's span as its parent, and records what the task raises.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Generator
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from qframe import PluginOption, hookimpl
from qframe.config import Config
from qframe.current import current_task
from qframe.task import Task
from qframe_otel import provider
from qframe_otel.settings import OPTIONS, Settings

#: Enqueue spans whose ``qframe_post_enqueue`` has not come (yet): task id -> span. Bounded,
#: because an enqueue that fails never reaches that hook.
_open: OrderedDict[str, trace.Span] = OrderedDict()
MAX_OPEN = 10_000


@hookimpl
def qframe_add_options() -> list[PluginOption]:
    """Declare ``otel_exporter``, ``otel_file`` and ``otel_service_name``."""
    return OPTIONS


@hookimpl
def qframe_configure(config: Config) -> None:
    """Set up this process's tracer provider (every cluster process, and a producer's first client)."""
    provider.configure(Settings.of(config))


@hookimpl
def qframe_pre_enqueue(task: Task) -> None:
    """Open the enqueue span and write its context into the task's headers."""
    span = provider.tracer().start_span(
        f"enqueue {task.func}", kind=SpanKind.PRODUCER, attributes=attributes(task)
    )
    propagate.inject(task.headers, context=trace.set_span_in_context(span))
    _open[task.id] = span
    while len(_open) > MAX_OPEN:
        _, stale = _open.popitem(last=False)
        stale.set_status(Status(StatusCode.ERROR, "the enqueue did not complete"))
        stale.end()


@hookimpl
def qframe_post_enqueue(task: Task, message_id: str) -> None:
    """End the enqueue span, with the broker's message id."""
    span = _open.pop(task.id, None)
    if span is not None:
        span.set_attribute("messaging.message.id", message_id)
        span.end()


@hookimpl(wrapper=True)
def qframe_execute_task(task: Task) -> Generator[None, Any, Any]:
    """Run the task inside a span whose parent is the producer's enqueue span."""
    parent = propagate.extract(task.headers)
    running = current_task()
    extra = {"qframe.task.attempt": running.attempt} if running is not None else {}
    with provider.tracer().start_as_current_span(
        f"run {task.func}", context=parent, kind=SpanKind.CONSUMER, attributes={**attributes(task), **extra}
    ):
        return (yield)


def attributes(task: Task) -> dict[str, str]:
    """The span attributes that name a task."""
    return {
        "messaging.system": "qframe",
        "messaging.destination.name": task.cluster,
        "qframe.queue": task.cluster,
        "qframe.task.id": task.id,
        "qframe.task.name": task.label,
        "qframe.task.func": task.func,
    }
