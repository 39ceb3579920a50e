"""Sealed envelopes: X25519 + HKDF-SHA256 + AES-256-GCM / ChaCha20-Poly1305 (net/envelope.py)."""

from __future__ import annotations

import pytest

from phalanx.errors import ConfigError
from phalanx.net.envelope import EnvelopeError, X25519Envelope, open_sealed, private_key, seal


def test_seal_open_round_trip_and_context_binding() -> None:
    # Prepare
    key = private_key(b"k" * 32)
    # Execute
    sealed = seal(b"shares", key.public_key(), b"e" * 32, b"bundle/1/2/1")
    # Assert
    assert open_sealed(sealed, key, b"bundle/1/2/1") == b"shares"
    assert b"shares" not in sealed
    with pytest.raises(EnvelopeError):
        open_sealed(sealed, key, b"bundle/1/3/1")  # replayed to another context


def test_tampered_truncated_or_misaddressed_envelopes_do_not_open() -> None:
    key, other = private_key(b"k" * 32), private_key(b"o" * 32)
    sealed = bytearray(seal(b"payload", key.public_key(), b"e" * 32))
    with pytest.raises(EnvelopeError):
        open_sealed(sealed[:20], key)
    with pytest.raises(EnvelopeError):
        open_sealed(bytes(sealed), other)
    sealed[40] ^= 1
    with pytest.raises(EnvelopeError):
        open_sealed(bytes(sealed), key)


def test_ephemeral_secret_makes_sealing_reproducible_and_fresh_per_secret() -> None:
    key = private_key(b"k" * 32)
    a = seal(b"x", key.public_key(), b"1" * 32)
    assert a == seal(b"x", key.public_key(), b"1" * 32)
    assert a != seal(b"x", key.public_key(), b"2" * 32)


def test_simulation_envelope_addresses_servers_and_validates_seed() -> None:
    env = X25519Envelope(b"s" * 32, 3)
    sealed = env.seal(2, b"hello", b"ctx")
    assert env.open(2, sealed, b"ctx") == b"hello"
    with pytest.raises(EnvelopeError):
        env.open(1, sealed, b"ctx")
    with pytest.raises(ConfigError, match="32"):
        X25519Envelope(b"short", 3)


@pytest.mark.parametrize("aead", ["aes-256-gcm", "chacha20-poly1305"])
def test_both_aeads_round_trip_and_do_not_open_each_others_envelopes(aead: str) -> None:
    key = private_key(b"k" * 32)
    other = "chacha20-poly1305" if aead == "aes-256-gcm" else "aes-256-gcm"
    sealed = seal(b"payload" * 100, key.public_key(), b"e" * 32, b"ctx", aead=aead)
    assert open_sealed(sealed, key, b"ctx", aead=aead) == b"payload" * 100
    with pytest.raises(EnvelopeError):  # the AEAD's name is bound into the key derivation
        open_sealed(sealed, key, b"ctx", aead=other)


def test_unknown_aead_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="aead='rot13'"):
        X25519Envelope(b"s" * 32, 3, aead="rot13")
    with pytest.raises(ConfigError, match="aead='rot13'"):
        seal(b"x", private_key(b"k" * 32).public_key(), b"e" * 32, aead="rot13")


@pytest.mark.parametrize("aead", ["aes-256-gcm", "chacha20-poly1305"])
def test_observers_see_exactly_the_sealed_bytes_in_order(aead: str) -> None:
    from phalanx.net.envelope import SealedReader

    key = private_key(b"k" * 32)
    payload = bytes(range(256)) * 3000  # > one 256 KiB piece, not a multiple of it
    written: list[bytes] = []
    sealed = seal(payload, key.public_key(), b"e" * 32, b"ctx", aead=aead,
                  observe=lambda piece: written.append(bytes(piece)))
    assert b"".join(written) == bytes(sealed) == bytes(
        seal(payload, key.public_key(), b"e" * 32, b"ctx", aead=aead))
    read: list[bytes] = []
    out = bytearray(len(payload) + 64)
    reader = SealedReader(sealed, key, b"ctx", aead=aead,
                          observe=lambda piece: read.append(bytes(piece)))
    view = reader.read_into(memoryview(out), len(payload))
    reader.verify()
    assert b"".join(read) == bytes(sealed) and bytes(view) == payload
