"""A peer's identity: one secp256k1 key (chain and message signatures) and one X25519 key
(sealed bundles), both its own (architecture.md; protocol.md §1 v1.1).

A real peer's keys come from the OS (``Identity.generate``; ``node.keystore`` keeps them on
disk). Only tests and explicitly reproducible simulations derive them from a seeded
``SecretSource`` (``Identity.from_source``), and such runs must say their secrets are not secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey, Signature
from eth_keys.exceptions import BadSignature

from phalanx.errors import ConfigError
from phalanx.mpc.parties import SecretSource

SIGNATURE_BYTES = 65


@dataclass(frozen=True, slots=True)
class Identity:
    """One peer's keys. ``address`` names it on chain and in every message it signs."""

    account: LocalAccount
    x25519_secret: bytes

    def __post_init__(self) -> None:
        if len(self.x25519_secret) != 32:
            raise ConfigError(f"x25519 secret has {len(self.x25519_secret)} bytes, expected 32")

    @classmethod
    def generate(cls) -> Identity:
        """Fresh keys from the OS CSPRNG (every real peer)."""
        return cls(Account.from_key(os.urandom(32)), os.urandom(32))

    @classmethod
    def from_source(cls, source: SecretSource, name: str) -> Identity:
        """Keys from a party's secret source (seeded: reproducible, hence not secret)."""
        return cls(Account.from_key(source.token(name, "secp256k1")),
                   source.token(name, "x25519"))

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def x25519_public(self) -> bytes:
        key = X25519PrivateKey.from_private_bytes(self.x25519_secret)
        return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, digest: bytes) -> bytes:
        """A 65-byte recoverable secp256k1 signature of a 32-byte digest."""
        if len(digest) != 32:
            raise ConfigError(f"digest has {len(digest)} bytes, expected 32")
        return bytes(PrivateKey(bytes(self.account.key)).sign_msg_hash(digest).to_bytes())


def recover_signer(digest: bytes, signature: bytes) -> str | None:
    """The checksummed address that signed ``digest``, or None for a malformed signature."""
    if len(signature) != SIGNATURE_BYTES or len(digest) != 32:
        return None
    try:
        sig = Signature(signature_bytes=signature)
        return str(sig.recover_public_key_from_msg_hash(digest).to_checksum_address())
    except (BadSignature, ValueError):
        return None
