"""Payload signing and encoding."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from qframe.errors import ConfigError, SignatureError
from qframe.serialize import Codec, secret_keys


class Exploding:
    """Unpickling this would run code: a signed-payload check must come first."""

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, ("touch /tmp/qframe-pwned",))


def test_round_trip_with_header() -> None:
    codec = Codec(["k"], "default")
    envelope = codec.encode({"a": (1, 2)}, timeout=2.5, max_attempts=4)
    header = codec.verify(envelope)
    assert (header.timeout, header.max_attempts) == (2.5, 4)
    assert codec.decode(envelope) == {"a": (1, 2)}
    assert codec.verify(codec.encode(1)).timeout is None


@pytest.mark.parametrize(
    "options", [{"serializer": "json"}, {"compress": True}, {"serializer": "json", "compress": True}]
)
def test_json_and_compression(options: dict[str, object]) -> None:
    codec = Codec(["k"], "default", **options)  # type: ignore[arg-type]
    assert codec.decode(codec.encode({"x": [1, "two"]})) == {"x": [1, "two"]}


def test_any_flipped_byte_fails_the_check() -> None:
    codec = Codec(["k"], "default")
    envelope = codec.encode({"payload": "x" * 50})
    for index in range(0, len(envelope), 7):
        tampered = bytearray(envelope)
        tampered[index] ^= 0x01
        with pytest.raises(SignatureError):
            codec.verify(bytes(tampered))


def test_malicious_pickle_signed_with_another_key_is_never_unpickled() -> None:
    marker = Path("/tmp/qframe-pwned")
    marker.unlink(missing_ok=True)
    forged = Codec(["attacker"], "default").encode(Exploding())
    with pytest.raises(SignatureError, match="bad signature"):
        Codec(["k"], "default").decode(forged)
    assert not marker.exists()


def test_the_cluster_name_salts_the_signature() -> None:
    envelope = Codec(["k"], "default").encode(1)
    with pytest.raises(SignatureError):
        Codec(["k"], "long").decode(envelope)


def test_fallback_keys_accept_old_payloads_during_rotation() -> None:
    old = Codec(["old"], "default").encode("queued before the rotation")
    rotated = Codec(["new", "old"], "default")
    assert rotated.decode(old) == "queued before the rotation"
    with pytest.raises(SignatureError):
        Codec(["old"], "default").decode(rotated.encode(1))


def test_short_payload_is_rejected() -> None:
    with pytest.raises(SignatureError, match="too short"):
        Codec(["k"], "default").verify(b"tiny")


def test_networked_broker_refuses_to_run_without_a_key() -> None:
    with pytest.raises(ConfigError, match=r"broker 'redis' needs a secret key: .*QFRAME_SECRET_KEY"):
        secret_keys(None, (), None, "redis")


def test_embedded_key_is_generated_once_private_and_shared(tmp_path: Path) -> None:
    key_file = tmp_path / "qframe.db.key"
    keys: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda: keys.append(secret_keys(None, (), key_file, "sqlite")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({tuple(k) for k in keys}) == 1
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert secret_keys(None, ("older",), key_file, "sqlite") == [keys[0][0], "older"]
    assert secret_keys("explicit", (), key_file, "sqlite") == ["explicit"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qframe.db.key"]
