"""The ``threads`` process manager: each worker process runs ``threads_per_process`` tasks at once."""

from qframe_threads.manager import ThreadsManager

__all__ = ["ThreadsManager"]
