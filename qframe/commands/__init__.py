"""The ``qframe`` commands that live in their own modules (``info``, ``monitor``, ``memory``)."""
