"""The broker interface every broker driver implements."""

from qframe.brokers.base import Broker, Message

__all__ = ["Broker", "Message"]
