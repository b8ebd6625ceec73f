"""Redis broker and result store drivers for qframe.

Install ``qframe-redis`` and set ``broker = "redis"`` and ``broker_url = "redis://..."``;
see the package README for the data layout, Sentinel and Cluster URLs.
"""

from qframe_redis.broker import RedisBroker
from qframe_redis.store import RedisStore

__all__ = ["RedisBroker", "RedisStore"]
