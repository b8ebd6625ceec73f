"""qframe-prometheus: Prometheus metrics for qframe clusters and producers.

Installing the distribution registers the hook plugin ``prometheus`` (entry point group
``qframe``). Every cluster process records into one per-cluster directory of
prometheus_client's multi-process mode; the sentinel serves the sum on
``prometheus_port`` (``/metrics``) or writes it to ``prometheus_textfile``. Producers
count ``qframe_tasks_enqueued_total`` in their own process's default registry.
"""

__version__ = "0.1.0"
