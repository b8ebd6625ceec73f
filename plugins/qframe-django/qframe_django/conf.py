"""The qframe :class:`~qframe.config.Config` of a Django project, from its settings.

Layers, lowest first: Django Q2's ``settings.Q_CLUSTER`` (translated by
:mod:`qframe_django.qcluster`) < ``settings.QFRAME`` (qframe's own option names) <
``QFRAME_*`` environment variables < explicit overrides (``manage.py qcluster --name``).
``SECRET_KEY`` signs payloads and ``SECRET_KEY_FALLBACKS`` are still accepted, unless
``QFRAME`` sets ``secret_key`` itself. Unless told otherwise the broker is the ``orm``
broker on the ``default`` database, and results go to the ``orm`` store, as in Django Q2.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from qframe.config import Config, load
from qframe_django.qcluster import Translation, translate

#: Hook module every cluster process of a Django project registers (signals, connections).
HOOKS_MODULE = "qframe_django.hooks"


def translation() -> Translation:
    """``settings.Q_CLUSTER`` translated (empty when the project has none)."""
    q_cluster = getattr(settings, "Q_CLUSTER", None) or {}
    return translate(q_cluster)


def django_values() -> dict[str, Any]:
    """The option values the Django settings give, before the environment and overrides."""
    values: dict[str, Any] = {"broker": "orm", "broker_url": "default"}
    values.update(translation().options)
    values.update(dict(getattr(settings, "QFRAME", None) or {}))
    if values.get("secret_key") is None:
        values["secret_key"] = settings.SECRET_KEY
        values.setdefault("secret_key_fallbacks", tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))
    if values.get("broker") != "orm" and values.get("store") is None:
        values["store"] = "orm"  # results live in the project's database, as with Django Q2
        values.setdefault("store_url", "default")
    modules = tuple(values.get("plugin_modules") or ())
    if HOOKS_MODULE not in modules:
        values["plugin_modules"] = (*modules, HOOKS_MODULE)
    name = os.environ.get("Q_CLUSTER_NAME")
    if name and "QFRAME_NAME" not in os.environ and "QFRAME_CLUSTER_NAME" not in os.environ:
        values["name"] = name  # Django Q2's way to start another queue's cluster
    return values


def load_config(overrides: Mapping[str, Any] | None = None) -> Config:
    """The validated Config of this project; raises :class:`~qframe.errors.ConfigError`.

    The Django layers are passed to :func:`qframe.config.load` below the environment:
    environment variables that set an option win over the settings, as everywhere in qframe.
    The table of the cluster being loaded (``clusters`` / Django Q2's ``ALT_CLUSTERS``) wins
    over the root of the settings.
    """
    values = django_values()
    overrides = dict(overrides or {})
    name = overrides.get("name") or os.environ.get("QFRAME_NAME") or os.environ.get("QFRAME_CLUSTER_NAME")
    table = (values.get("clusters") or {}).get(name or values.get("name"))
    if isinstance(table, Mapping):  # the queue's own table (ALT_CLUSTERS) beats the settings' root
        values.update(table)
    env_set = {key[len("QFRAME_") :].lower() for key in os.environ if key.startswith("QFRAME_")}
    base = {k: v for k, v in values.items() if k not in env_set or k == "plugin_modules"}
    return load({**base, **overrides})


def app_setting(key: str, default: Any) -> Any:
    """A setting of this app: ``QFRAME_DJANGO[key]``, else Django Q2's ``Q_CLUSTER[key]``."""
    own = getattr(settings, "QFRAME_DJANGO", None) or {}
    if key in own:
        return own[key]
    return translation().app.get(key, default)


@functools.lru_cache(maxsize=1)
def _cached_config() -> Config:
    return load_config()


def project_config() -> Config:
    """The project's Config, built once per process (``reset()`` forgets it)."""
    return _cached_config()


def reset() -> None:
    """Forget the cached Config and the compat client (after changing settings in tests)."""
    _cached_config.cache_clear()
    from qframe_django import compat

    compat.forget_client()


def decode_result(blob: bytes) -> Any:
    """A stored result blob decoded into a :class:`qframe.TaskResult` with the project's keys."""
    from qframe.cluster.stat import config_keys
    from qframe.serialize import result_codec
    from qframe.task import TaskResult

    config = project_config()
    return TaskResult.from_dict(result_codec(config_keys(config), config).decode(blob))
