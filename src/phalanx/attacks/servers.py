"""Server misbehaviour models for the committee (protocol.md §3.4), as pure share transformers.

A :class:`ServerFault` says which server deviates, in which kind of opening (or all), towards
which receivers (or all), and how: ``ALTER`` adds a nonzero offset to the share it sends,
``DROP`` sends nothing (an erasure), ``FALSE_CLAIM`` says the uploads of ``clients`` (None:
every client) do not open although they do (§3.4 dispute). :class:`ServerFaults` plugs a
list of them into the committee engine through its ``ShareTamper`` interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from phalanx.errors import ConfigError
from phalanx.mpc.field import FieldVec, P
from phalanx.mpc.messages import OpeningKind


class ServerAction(Enum):
    """What a faulty server does with a share it should send."""

    ALTER = "alter"
    DROP = "drop"
    FALSE_CLAIM = "false-claim"


@dataclass(frozen=True, slots=True)
class ServerFault:
    """One server's deviation; ``kind``/``receivers`` None mean every opening / receiver.

    ``position`` is the coordinate altered (None: every coordinate).
    """

    server: int
    action: ServerAction = ServerAction.ALTER
    kind: OpeningKind | None = None
    receivers: frozenset[int] | None = None
    position: int | None = 0
    delta: int = 1
    #: FALSE_CLAIM: the clients whose uploads the server disowns (None: every client)
    clients: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if self.server < 0:
            raise ConfigError(f"server={self.server} must be >= 0")
        if self.action is ServerAction.ALTER and self.delta % P == 0:
            raise ConfigError(f"delta={self.delta} must be nonzero mod p")


class ServerFaults:
    """A set of server faults, applied to every share a server sends."""

    def __init__(self, faults: Sequence[ServerFault]) -> None:
        self.faults = tuple(faults)

    def faulty(self) -> frozenset[int]:
        return frozenset(f.server for f in self.faults)

    def false_claim(self, server: int, client: int) -> bool:
        return any(f.server == server and f.action is ServerAction.FALSE_CLAIM
                   and (f.clients is None or client in f.clients) for f in self.faults)

    def tamper(
        self, server: int, kind: OpeningKind, receiver: int, shares: FieldVec
    ) -> FieldVec | None:
        out = shares
        for f in self.faults:
            if f.action is ServerAction.FALSE_CLAIM:
                continue
            if f.server != server or (f.kind is not None and f.kind is not kind):
                continue
            if f.receivers is not None and receiver not in f.receivers:
                continue
            if f.action is ServerAction.DROP:
                return None
            out = out.copy()
            idx = slice(None) if f.position is None else f.position % out.shape[0]
            out[idx] = (out[idx] + np.uint64(f.delta % P)) % np.uint64(P)
        return out


#: the simulator's committee adversaries (``simulate --server-attack``), by the action they take
SERVER_ATTACKS: dict[str, ServerAction] = {
    "tamper": ServerAction.ALTER,
    "silent": ServerAction.DROP,
    "false-claim": ServerAction.FALSE_CLAIM,
}


#: the openings a tampering server alters: the check values and the aggregate, where a wrong
#: share does harm (a consistency share is recomputed from the committed bundle, so altering
#: it only gets the server named); for fltrust both are degree 2t
TAMPERED_OPENINGS = (OpeningKind.CHECKS, OpeningKind.AGGREGATE)


def make_server_faults(attack: str, servers: Sequence[int]) -> ServerFaults:
    """``servers`` all running ``attack`` towards every receiver (§3.4).

    tamper: every coordinate of every share sent in a check or aggregate opening is off by one;
    silent: nothing is ever sent (an erasure); false-claim: every client's upload is said not
    to open (a dispute, until the claimant is identified).
    """
    if attack not in SERVER_ATTACKS:
        raise ConfigError(f"server_attack={attack!r} is unknown; choose one of "
                          f"{['none', *SERVER_ATTACKS]}")
    action, chosen = SERVER_ATTACKS[attack], sorted(set(servers))
    if action is ServerAction.ALTER:
        return ServerFaults([ServerFault(j, action, kind=kind, position=None)
                             for j in chosen for kind in TAMPERED_OPENINGS])
    return ServerFaults([ServerFault(j, action) for j in chosen])


def server_attack_warning(attack: str, corrupt: int, m: int, t: int) -> str | None:
    """What the protocol can promise against ``corrupt`` of ``m`` servers at threshold ``t``
    (None when it names every tampering server): docs/mpc.md deviation 6c."""
    if corrupt > t:
        return (f"warning: corrupt_servers={corrupt} > threshold={t}: beyond the threat model "
                f"(they could also pool their shares and read the inputs); the outcome is "
                f"not guaranteed")
    if attack == "tamper" and m < 4 * t + 1:
        return (f"warning: server_attack='tamper' with committee={m} < 4t+1={4 * t + 1}: a "
                f"wrong degree-2t share (the checks) is detected but cannot be attributed, so "
                f"the round aborts and nobody is identified (an identified abort is impossible "
                f"at m = 3t+1)")
    return None
