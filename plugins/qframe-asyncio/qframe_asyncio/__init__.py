"""The ``asyncio`` process manager: an event loop per worker process, many tasks at once."""

from qframe_asyncio.manager import AsyncioManager

__all__ = ["AsyncioManager"]
