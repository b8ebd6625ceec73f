"""Named drivers (brokers, stores, schedulers, process managers) through stevedore.

This is the only module that knows how drivers are found: by entry point name in the
groups below, or by an explicit ``module:Class`` path.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stevedore import driver as stevedore_driver
from stevedore.exception import MultipleMatches, NoMatches

from qframe.errors import ConfigError, DriverNotFound
from qframe.stores.base import DeadLetterStore

if TYPE_CHECKING:
    from qframe.brokers.base import Broker
    from qframe.config import Config
    from qframe.processes import ProcessManager
    from qframe.stores.base import Store

GROUPS = {
    "broker": "qframe.brokers",
    "store": "qframe.stores",
    "scheduler": "qframe.schedulers",
    "process_manager": "qframe.process_managers",
}


def available(kind: str) -> list[str]:
    """Names of the installed drivers of ``kind``."""
    return sorted({ep.name for ep in entry_points(group=GROUPS[kind])})


def load(kind: str, name: str) -> Any:
    """The driver class of ``kind`` called ``name`` (an entry point name or ``module:Class``)."""
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise DriverNotFound(f"{kind} '{name}' does not import: {exc}") from None
    label = kind.replace("_", " ")
    try:
        return stevedore_driver.DriverManager(GROUPS[kind], name, invoke_on_load=False).driver
    except NoMatches:
        names = ", ".join(available(kind)) or "none"
        raise DriverNotFound(f"unknown {label} '{name}'; installed {label}s: {names}") from None
    except MultipleMatches:
        raise ConfigError(f"{label} '{name}' is installed by more than one distribution") from None
    except Exception as exc:  # the driver's module itself failed to import
        raise DriverNotFound(f"{label} '{name}' failed to load: {type(exc).__name__}: {exc}") from exc


def make_broker(config: Config) -> Broker:
    """A broker for ``config``'s queue (its cluster name)."""
    cls = load("broker", config.broker)
    options = {"lease": config.lease, "poll": config.poll, **config.broker_options}
    return cls(config.broker_url, config.name, **options)  # type: ignore[no-any-return]


def store_choice(config: Config) -> tuple[str, str | None]:
    """The store driver name and URL ``config`` selects.

    Unset, the store is the broker's own (the store driver of the broker's name); a broker
    with none is a :class:`ConfigError`, never a silent file on one host. The store's URL
    defaults to the broker's for the broker's own store, and for ``sqlite`` beside a
    ``sqlite:`` broker URL (one file for both).
    """
    name = config.store
    if name is None:
        stores = available("store")
        if config.broker not in stores:
            raise ConfigError(
                f"broker '{config.broker}' keeps no results of its own: set store (QFRAME_STORE) to "
                f"one of the installed stores: {', '.join(stores) or 'none'} ('sqlite' keeps them on "
                "this host only)"
            )
        name = config.broker
    if config.store_url is not None:
        return name, config.store_url
    shares_sqlite_file = name == "sqlite" and (config.broker_url or "").startswith("sqlite:")
    return name, config.broker_url if name == config.broker or shares_sqlite_file else None


def make_store(config: Config) -> Store:
    """The store for ``config``; it must keep dead letters when the broker keeps none."""
    name, url = store_choice(config)
    cls = load("store", name)
    if not issubclass(cls, DeadLetterStore) and not load("broker", config.broker).has_dead_letters:
        raise ConfigError(
            f"broker '{config.broker}' keeps no dead letters and store '{name}' cannot keep them "
            "either: choose a store that fills the dead-letter role (sqlite and redis do)"
        )
    limits = {"save_limit": config.save_limit, "save_limit_per": config.save_limit_per}
    return cls(url, **limits, **config.store_options)  # type: ignore[no-any-return]


def make_process_manager(config: Config) -> ProcessManager:
    """The process manager for ``config``."""
    return load("process_manager", config.process_manager)(config)  # type: ignore[no-any-return]


def key_file(config: Config) -> Path | None:
    """Where an embedded broker keeps its generated secret key (None for networked ones)."""
    return load("broker", config.broker).local_key_file(config.broker_url)  # type: ignore[no-any-return]
