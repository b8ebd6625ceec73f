"""The exceptions qframe raises; each message is one line that names the problem."""

from __future__ import annotations


class QFrameError(Exception):
    """Base class of every error qframe raises on purpose."""


class ConfigError(QFrameError):
    """A setting is unknown, has the wrong type, or contradicts another setting."""


class DriverNotFound(ConfigError):
    """No installed driver answers to the configured name."""


class SignatureError(QFrameError):
    """A payload failed its HMAC check: it is never decoded."""


class BrokerError(QFrameError):
    """The broker could not store, hand out or acknowledge a message."""


class StoreError(QFrameError):
    """The store could not save, read or delete a result, a status or a dead letter."""


class TaskImportError(QFrameError):
    """A task's dotted path does not resolve to a callable."""


class PluginError(QFrameError):
    """A plugin cannot work; raised on purpose, it stops the process that called the hook."""


class PayloadTooLarge(QFrameError):
    """A task's signed payload is larger than its broker's ``max_payload``; nothing was stored."""


class InvalidArgument(QFrameError, ValueError):
    """An argument of a qframe call is out of range (a ``wait`` below 0 but not -1, a ``count`` below 1)."""
