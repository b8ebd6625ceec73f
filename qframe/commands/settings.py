"""The effective configuration as ``qframe info --config`` prints it, with its secrets masked.

Masked: the signing keys, the password (and any secret-looking query parameter) of every
URL, and every value under a secret-looking name in the driver options, the plugin
options and the per-cluster tables. What is masked shows as ``****``, so a reader can
still see that it is set.
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from qframe.config import FIELDS, Config

MASK = "****"
#: Option and parameter names whose values are secrets.
SECRET_NAME = re.compile(r"password|passwd|secret|token|credential|api_?key|access_?key|private", re.I)
#: Core options that hold keys themselves.
SECRET_OPTIONS = frozenset({"secret_key", "secret_key_fallbacks"})


def masked_url(url: str) -> str:
    """``url`` with its password and secret-looking query parameters replaced by ``****``."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if password is None and not any(SECRET_NAME.search(key) for key, _ in pairs):
        return url  # nothing to hide: keep the URL exactly as written
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:{MASK}@{host}"
    masked_pairs = [(key, MASK if SECRET_NAME.search(key) else value) for key, value in pairs]
    query = urllib.parse.urlencode(masked_pairs, safe="*")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def masked(name: str, value: Any) -> Any:
    """``value`` of the option or parameter ``name``, its secrets masked (recursively)."""
    if value is None:
        return None
    if SECRET_NAME.search(name) or name in SECRET_OPTIONS:
        return [MASK for _ in value] if isinstance(value, list | tuple) else MASK
    if isinstance(value, Mapping):
        return {str(key): masked(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [masked(name, item) for item in value]
    if isinstance(value, str) and "://" in value:
        return masked_url(value)
    return value


def effective_settings(config: Config) -> dict[str, Any]:
    """Every core and plugin option's value, secrets masked, in the order of the option reference."""
    values = {name: getattr(config, name) for name in FIELDS}
    values.update(config.plugin_values)
    return {name: masked(name, value) for name, value in values.items()}


def setting_lines(settings: Mapping[str, Any]) -> list[str]:
    """``name = value`` lines (TOML-like: strings quoted, unset options as a comment)."""
    lines = []
    for name, value in settings.items():
        if value is None:
            lines.append(f"# {name} is not set")
        else:
            lines.append(f"{name} = {json.dumps(_plain(value))}")
    return lines


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)
