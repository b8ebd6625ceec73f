"""The start-up check: a cluster starts nothing until its broker and its store answer.

Each is opened and pinged with a bounded backoff for ``startup_wait`` seconds; past that
the cluster gives up with one line naming the server and the reason, so a process
manager sees a failed start instead of a "running" cluster that does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from qframe.brokers.base import Broker
from qframe.config import Config
from qframe.drivers import make_broker, make_store, store_choice
from qframe.errors import BrokerError, QFrameError, StoreError
from qframe.stores.base import Store

log = logging.getLogger("qframe")

#: The first pause between two attempts; it doubles up to :data:`LONGEST_PAUSE`.
FIRST_PAUSE = 0.1
LONGEST_PAUSE = 1.0

Driver = TypeVar("Driver", Broker, Store)


def reach_broker(config: Config, give_up: Callable[[], bool]) -> Broker | None:
    """The broker, opened and answering its ping; None when ``give_up()`` turned true first.

    Raises :class:`BrokerError` once ``startup_wait`` seconds passed without an answer.
    """
    where = _where(config.broker, config.broker_url)
    return _retry(lambda: make_broker(config), "broker", where, config, give_up, BrokerError)


def reach_store(config: Config, give_up: Callable[[], bool]) -> Store | None:
    """The store, opened and answering its ping; None when ``give_up()`` turned true first.

    Raises :class:`StoreError` once ``startup_wait`` seconds passed without an answer.
    """
    where = _where(*store_choice(config))
    return _retry(lambda: make_store(config), "store", where, config, give_up, StoreError)


def _pinged(driver: Driver, error: type[QFrameError]) -> Driver:
    """``driver`` once it answered its ping; closed when it did not."""
    try:
        if not driver.ping():
            raise error("no answer to ping")
    except BaseException:
        driver.close()
        raise
    return driver


def _retry(
    open_driver: Callable[[], Driver],
    kind: str,
    where: str,
    config: Config,
    give_up: Callable[[], bool],
    error: type[QFrameError],
) -> Driver | None:
    deadline = time.monotonic() + config.startup_wait
    pause = FIRST_PAUSE
    while True:
        try:
            return _pinged(open_driver(), error)
        except (BrokerError, StoreError) as exc:
            if time.monotonic() >= deadline:
                raise error(
                    f"cannot reach the {kind} {where} after {config.startup_wait:g} s: {reason(exc)}"
                ) from exc
            log.debug("cannot reach the %s %s yet: %s", kind, where, exc)
        until = min(time.monotonic() + pause, deadline)
        while time.monotonic() < until:
            if give_up():
                return None
            time.sleep(min(0.05, max(0.0, until - time.monotonic())))
        pause = min(pause * 2, LONGEST_PAUSE)


def reason(exc: BaseException) -> str:
    """Why ``exc`` happened, in a few words: the operating system's reason when there is one.

    ``redis broker at ... is unreachable: Error 111 connecting to ...`` comes down to the
    ``ConnectionRefusedError`` at the root of its chain: ``Connection refused``.
    """
    root = exc
    while (cause := root.__cause__ or root.__context__) is not None:
        root = cause
    if isinstance(root, OSError) and (root.strerror or str(root)):
        return root.strerror or str(root)
    return str(exc) or type(exc).__name__


def _where(name: str, url: str | None) -> str:
    """The driver's URL without its password, or its name when it uses its default location."""
    if not url:
        return f"'{name}' (its default location)"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    hosts = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{hosts}"))
