"""qframe-otel: OpenTelemetry traces across the producer and the worker.

Installing the distribution registers the hook plugin ``otel`` (entry point group
``qframe``). The producer opens a span when it enqueues a task and writes the trace
context into ``task.headers``; the worker continues that trace with a span around the run.
"""

__version__ = "0.1.0"
