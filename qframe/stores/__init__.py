"""The result store interface every store driver implements."""

from qframe.stores.base import ResultMeta, Store, Tally

__all__ = ["ResultMeta", "Store", "Tally"]
