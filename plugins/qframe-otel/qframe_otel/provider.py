"""The tracer provider of one process, built from the plugin's settings.

With ``otel_exporter = ""`` the plugin uses whatever provider the process has (the
application's, or OpenTelemetry's no-op one). Otherwise each process (producer, every
cluster process) builds its own SDK provider once, in ``qframe_configure``: a forked
child builds a new one, since span processors and their files do not cross a fork. The
new provider also becomes the global one when the process has none yet, so spans that
task code opens land in the same trace.
"""

from __future__ import annotations

import multiprocessing.util
import os
from typing import IO

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from qframe.errors import PluginError
from qframe_otel import __version__
from qframe_otel.settings import Settings

#: Large enough that each span reaches the file in one write, so processes appending to one
#: file never interleave their lines.
FILE_BUFFER = 1 << 20

#: The provider built in this process: (pid, the settings it was built for, the provider).
_built: tuple[int, Settings, TracerProvider] | None = None


def configure(settings: Settings) -> None:
    """Build this process's provider for ``settings`` (again only when the settings change)."""
    global _built
    settings.check()
    if not settings.exporter:
        _built = None
        return
    if _built is not None and _built[:2] == (os.getpid(), settings):
        return
    resource = Resource.create({"service.name": settings.service_name, "process.pid": os.getpid()})
    provider = TracerProvider(resource=resource)
    processor = _processor(settings)
    provider.add_span_processor(processor)
    # multiprocessing children leave through os._exit, which skips atexit: flush there too.
    multiprocessing.util.Finalize(provider, processor.shutdown, exitpriority=10)
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    _built = (os.getpid(), settings, provider)


def tracer() -> trace.Tracer:
    """The tracer of this process: of the plugin's provider, or of the process's global one."""
    own = _built is not None and _built[0] == os.getpid()
    provider = _built[2] if _built is not None and own else trace.get_tracer_provider()
    return provider.get_tracer("qframe_otel", __version__)


def _processor(settings: Settings) -> SpanProcessor:
    if settings.exporter == "console":
        return SimpleSpanProcessor(ConsoleSpanExporter())
    if settings.exporter == "file":
        return SimpleSpanProcessor(ConsoleSpanExporter(out=_append(settings.file), formatter=_json_line))
    return BatchSpanProcessor(_otlp())


def _append(path: str) -> IO[str]:
    try:
        return open(path, "a", buffering=FILE_BUFFER, encoding="utf-8")  # lives as long as the process
    except OSError as exc:
        raise PluginError(f"otel_file '{path}' cannot be opened for appending: {exc}") from exc


def _json_line(span: ReadableSpan) -> str:
    return f"{span.to_json(indent=None)}\n"


def _otlp() -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise PluginError(
            "otel_exporter = 'otlp' needs opentelemetry-exporter-otlp-proto-http: "
            "pip install 'qframe-otel[otlp]'"
        ) from exc
    exporter: SpanExporter = (
        OTLPSpanExporter()
    )  # endpoint and headers from the OTEL_EXPORTER_OTLP_* variables
    return exporter
