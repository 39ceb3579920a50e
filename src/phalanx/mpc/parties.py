"""Where a party's secrets come from (protocol.md §1, v1.1: "Secrets belong to parties").

Every party — each client, each committee server — draws its own secrets (sharing polynomials,
the PRZS keys it deals, envelope ephemerals and long-term keys, the coefficients it locates
decoding errors with) from a :class:`SecretSource` that it alone holds. ``mpc`` is pure, so the
operating-system source lives with the callers (``rules.secure.backend.OsSecrets``,
``protocol.identity``); this module defines the interface and the one seeded source, which
tests and explicitly reproducible simulations inject per party — its outputs are then not
secret, and whoever uses it must say so.
"""

from __future__ import annotations

from typing import Protocol

from phalanx.errors import ConfigError
from phalanx.mpc.prg import Prg, derive


class SecretSource(Protocol):
    """A party's private randomness: a fresh PRG for one purpose of one party."""

    #: whether outputs are reproducible from public data (True only for the seeded source)
    reproducible: bool

    def prg(self, party: str, *purpose: str | int | bytes) -> Prg:
        """A PRG that only ``party`` may use, for ``purpose`` (labels are not secret)."""

    def token(self, party: str, *purpose: str | int | bytes) -> bytes:
        """32 secret bytes for ``party`` and ``purpose``."""


class SeededSecrets:
    """Secrets derived from one seed per party and purpose: reproducible, hence NOT secret.

    For tests and for simulations run with ``--reproducible-secrets`` (which say so in their
    configuration and report). Two parties never share a stream: the party name is part of
    every derivation, so one party's outputs say nothing about another's beyond the seed.
    """

    reproducible = True

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ConfigError(f"secrets seed has {len(seed)} bytes, expected 32")
        self._seed = seed

    def prg(self, party: str, *purpose: str | int | bytes) -> Prg:
        return Prg(self.token(party, *purpose))

    def token(self, party: str, *purpose: str | int | bytes) -> bytes:
        return derive(self._seed, "party-secret", party, *purpose)
