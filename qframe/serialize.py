"""Payload codecs: pickle or JSON, optional zlib, and an HMAC-SHA256 signature.

An envelope is ``MAC(32) | header | body``. The header holds the flags and the two task
options the pusher needs before any decoding (timeout, max_attempts). The MAC covers
header and body, is keyed by the secret key salted with the cluster name, and is checked
with :func:`hmac.compare_digest` before a single byte of the body is decoded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import pickle
import secrets
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qframe.errors import ConfigError, SignatureError

if TYPE_CHECKING:
    from qframe.config import Config

log = logging.getLogger("qframe")

MAC_SIZE = 32
_HEADER = struct.Struct("!Bdi")
_COMPRESSED = 1
_JSON = 2


@dataclass(frozen=True, slots=True)
class Header:
    """What the pusher reads from a verified envelope without decoding the body."""

    flags: int
    #: The task's own timeout in seconds, or None for the cluster's.
    timeout: float | None
    #: The task's own max_attempts, or None for the cluster's.
    max_attempts: int | None


class Codec:
    """Signs, verifies, encodes and decodes payloads for one cluster (queue)."""

    def __init__(
        self, keys: Sequence[str], salt: str, serializer: str = "pickle", compress: bool = False
    ) -> None:
        if not keys:
            raise ConfigError("a codec needs at least one secret key")
        self._keys = [hashlib.sha256(f"qframe:{salt}:{key}".encode()).digest() for key in keys]
        self._flags = (_JSON if serializer == "json" else 0) | (_COMPRESSED if compress else 0)

    def encode(self, obj: Any, timeout: float | None = None, max_attempts: int | None = None) -> bytes:
        """Serialize and sign ``obj``."""
        if self._flags & _JSON:
            body = json.dumps(obj, separators=(",", ":")).encode()
        else:
            body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        if self._flags & _COMPRESSED:
            body = zlib.compress(body)
        header = _HEADER.pack(
            self._flags,
            math.nan if timeout is None else timeout,
            -1 if max_attempts is None else max_attempts,
        )
        signed = header + body
        return hmac.digest(self._keys[0], signed, "sha256") + signed

    def verify(self, envelope: bytes) -> Header:
        """Check the signature and return the header; raise :class:`SignatureError` if it fails."""
        if len(envelope) < MAC_SIZE + _HEADER.size:
            raise SignatureError("payload too short to carry a signature")
        mac, signed = envelope[:MAC_SIZE], memoryview(envelope)[MAC_SIZE:]
        for key in self._keys:
            if hmac.compare_digest(mac, hmac.digest(key, signed, "sha256")):
                flags, timeout, max_attempts = _HEADER.unpack_from(signed)
                return Header(
                    flags,
                    None if math.isnan(timeout) else timeout,
                    None if max_attempts < 0 else max_attempts,
                )
        raise SignatureError("bad signature (tampered payload, or another secret key or cluster name)")

    def decode(self, envelope: bytes, *, json_only: bool = False) -> Any:
        """Verify, then decode ``envelope``; with ``json_only``, a pickled body is a ValueError."""
        flags = self.verify(envelope).flags
        if json_only and not flags & _JSON:
            raise ValueError("payload is not JSON (refusing to unpickle it)")
        body = envelope[MAC_SIZE + _HEADER.size :]
        if flags & _COMPRESSED:
            body = zlib.decompress(body)
        if flags & _JSON:
            return json.loads(body)
        return pickle.loads(body)


def result_codec(keys: Sequence[str], config: Config) -> Codec:
    """The codec of saved results: one salt for every queue, so any producer can read them."""
    return Codec(keys, "qframe-results", config.serializer, config.compress)


def secret_keys(
    secret_key: str | None, fallbacks: Sequence[str], key_file: Path | None, broker: str
) -> list[str]:
    """The signing keys, newest first; generate one into ``key_file`` when allowed and missing."""
    try:
        return _secret_keys(secret_key, fallbacks, key_file, broker)
    except OSError as exc:
        raise ConfigError(f"cannot read or create the secret key file {key_file}: {exc.strerror}") from None


def _secret_keys(
    secret_key: str | None, fallbacks: Sequence[str], key_file: Path | None, broker: str
) -> list[str]:
    if secret_key:
        return [secret_key, *fallbacks]
    if key_file is None:
        raise ConfigError(
            f"broker '{broker}' needs a secret key: set secret_key in the config or "
            "QFRAME_SECRET_KEY (every cluster and producer of a queue must share it)"
        )
    try:
        return [key_file.read_text().strip(), *fallbacks]
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(32)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    draft = key_file.with_name(f".{key_file.name}.{secrets.token_hex(8)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    try:
        os.link(draft, key_file)  # atomic: a racing process either wins or reads the winner's key
    except FileExistsError:
        return [key_file.read_text().strip(), *fallbacks]
    finally:
        draft.unlink()
    log.info("generated a secret key in %s (keep it private; producers on this machine use it too)", key_file)
    return [key, *fallbacks]
