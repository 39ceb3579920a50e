"""The operating system as a party's secret source (protocol.md §1, v1.1).

``mpc`` is pure and never touches the OS, so the production :class:`~phalanx.mpc.parties.
SecretSource` lives here: every call draws fresh bytes from ``secrets`` (the OS CSPRNG), and
the labels are ignored — nothing secret depends on anything public.
"""

from __future__ import annotations

import secrets

from phalanx.mpc.prg import Prg


class OsSecrets:
    """Fresh OS randomness for every request (the default of every party)."""

    reproducible = False

    def prg(self, party: str, *purpose: str | int | bytes) -> Prg:
        return Prg(secrets.token_bytes(32))

    def token(self, party: str, *purpose: str | int | bytes) -> bytes:
        return secrets.token_bytes(32)
