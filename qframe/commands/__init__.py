"""``qframe`` commands in modules of their own: ``info``, ``monitor``, ``memory``, and ``enqueue --wait``."""
