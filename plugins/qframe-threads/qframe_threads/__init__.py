"""The ``threads`` process manager: each worker process runs ``threads`` tasks at once."""

from qframe_threads.manager import ThreadsManager

__all__ = ["ThreadsManager"]
