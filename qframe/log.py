"""The ``qframe`` logger and its default handler, in the seed's line format."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s [Q] %(levelname)s %(message)s"
DATE_FORMAT = "%H:%M:%S"


def configure(level: str = "INFO") -> logging.Logger:
    """Give the ``qframe`` logger a stderr handler (unless the app configured one) and a level."""
    logger = logging.getLogger("qframe")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
    return logger
