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


SERVER_KEYS = [bytes([j + 1]) * 32 for j in range(3)]


def test_envelope_addresses_servers_and_validates_their_keys() -> None:
    env = X25519Envelope(SERVER_KEYS)
    sealed = env.seal(2, b"hello", b"ctx")
    assert env.open(2, sealed, b"ctx") == b"hello"
    with pytest.raises(EnvelopeError):
        env.open(1, sealed, b"ctx")
    with pytest.raises(EnvelopeError):  # the context (task, round, seat, part) is bound
        env.open(2, sealed, b"ctx-of-another-round")
    with pytest.raises(ConfigError, match="32"):
        X25519Envelope([b"short"])


def test_every_envelope_has_a_fresh_os_ephemeral() -> None:
    # Prepare: the same payload sealed twice under the same context, by two senders
    env, again = X25519Envelope(SERVER_KEYS), X25519Envelope(SERVER_KEYS)
    # Execute
    a, b, c = env.seal(0, b"x" * 64, b"ctx"), env.seal(0, b"x" * 64, b"ctx"), \
        again.seal(0, b"x" * 64, b"ctx")
    # Assert: fresh ephemeral public keys, so fresh AEAD keys: no key/nonce reuse, ever
    assert len({bytes(a)[:32], bytes(b)[:32], bytes(c)[:32]}) == 3


def test_a_revealed_ephemeral_opens_that_one_envelope_for_anyone() -> None:
    # Prepare: a sender seals two envelopes to server 1 (a dispute, protocol.md §3.4)
    env = X25519Envelope(SERVER_KEYS)
    first, second = env.seal(1, b"bundle-1", b"ctx/1"), env.seal(1, b"bundle-2", b"ctx/2")
    eph = env.reveal(1, b"ctx/2")
    assert eph is not None
    # Execute: a verifier holding only the public keys opens the revealed envelope
    verifier = X25519Envelope([bytes([9]) * 32] * 3)
    verifier.public = env.public
    reader = verifier.open_revealed(1, second, b"ctx/2", ephemeral=eph)
    out = bytearray(len(b"bundle-2") + 16)
    got = bytes(reader.read_into(memoryview(out), len(b"bundle-2")))
    reader.verify()
    # Assert: it opens; the same secret does not open the other envelope
    assert got == b"bundle-2"
    with pytest.raises(EnvelopeError, match="not this envelope's"):
        verifier.open_revealed(1, first, b"ctx/1", ephemeral=eph)


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
        X25519Envelope(SERVER_KEYS, aead="rot13")
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
