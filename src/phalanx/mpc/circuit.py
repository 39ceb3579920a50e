"""The interface between the committee engine and a rule's secure form (protocol.md §3.2–3.3).

A circuit says what a client shares (long vectors, part-1 scalars, and part-2 scalars computed
after the post-commitment coin), which degree-≤2 identities the servers check, and how the
accumulated shares become the output. The engine (:mod:`phalanx.mpc.committee`) is generic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import Reject
from phalanx.mpc.field import FieldVec
from phalanx.mpc.messages import OpeningKind, ShareVector
from phalanx.mpc.prg import Prg


@dataclass(frozen=True, slots=True)
class ClientSecrets:
    """What one client shares in part 1, plus private state it needs for part 2."""

    vectors: tuple[FieldVec, ...]
    scalars: FieldVec
    private: Any = None


@dataclass(frozen=True, slots=True)
class ClientShares:
    """One server's shares of one client: long vectors (explicit shares stay 61-bit packed),
    part-1 and part-2 scalars."""

    vectors: tuple[ShareVector, ...]
    scalars1: FieldVec
    scalars2: FieldVec


@dataclass(frozen=True, slots=True)
class LocalResult:
    """A server's shares of a client's consistency value (degree t) and check values (2t),
    then of its revealed values (``Circuit.client_reveals``)."""

    consistency: int
    checks: tuple[int, ...]
    memo: Any = None


@dataclass(frozen=True, slots=True)
class FinalShare:
    """A server's share of one value opened at the end of the round."""

    kind: OpeningKind
    values: FieldVec
    degree_2t: bool


class Circuit(Protocol):
    """A rule compiled to shares and witnesses."""

    vector_labels: tuple[str, ...]
    check_reasons: tuple[Reject, ...]
    #: per-client values opened with the check values, after them in ``LocalResult.checks``
    #: (fltrust's trust bit [w > 0] when revealed; empty otherwise): not checks, but opened
    #: like them (degree 2t, re-randomized, RS-decoded) and reported in the verdict
    client_reveals: tuple[str, ...]
    #: whether ``server_process_batch`` reads part-1 vectors chunk by chunk, in order
    #: (``mpc.stream``): then a seeded server's vectors are expanded as the pass reads them
    streams: bool

    def item_lengths(self) -> dict[str, int]:
        """The length of every item a client's bundles hold (vectors, "s1", "s2"): a bundle
        with other items or lengths is malformed and rejects its client."""

    def client_secrets(self, prepared: NDArray[np.float32], prg: Prg) -> ClientSecrets:
        """Encode a prepared input and its part-1 witnesses (best effort, never raises)."""

    def client_response(self, secrets: ClientSecrets, coin1: bytes) -> FieldVec:
        """Part-2 witnesses, which depend on the post-commitment coin (may be empty)."""

    def begin(self, coin1: bytes, coin2: bytes) -> None:
        """Derive the round's public randomness (rows, check weights) from the coins."""

    def new_accumulator(self) -> Any:
        """A server's empty running aggregate."""

    def server_process(self, shares: ClientShares, acc: Any | None) -> LocalResult:
        """One fused pass over a client's shares; tentatively accumulates into ``acc``."""

    def server_process_batch(self, batch: Sequence[ClientShares],
                             acc: Any | None) -> list[LocalResult]:
        """``server_process`` for several clients at once (one pass where the circuit can)."""

    def server_rollback(self, shares: ClientShares, local: LocalResult, acc: Any) -> None:
        """Undo the tentative accumulation of a rejected client."""

    def final_shares(self, acc: Any) -> Sequence[FinalShare]:
        """The server's shares of the values opened at the end."""

    def finish(
        self, opened: dict[OpeningKind, FieldVec], n_accepted: int
    ) -> tuple[NDArray[np.float32], dict[str, float]]:
        """The output vector and the revealed quantities from the opened values."""


def check_width(circuit: Circuit) -> int:
    """How many values a client's check opening has: its checks, then its revealed values."""
    return len(circuit.check_reasons) + len(circuit.client_reveals)


def contributes(circuit: Circuit, revealed: Sequence[int]) -> bool:
    """Whether a client that passed every check is accepted (paid): always, unless the circuit
    reveals fltrust's trust bit and it is 0 (weight 0: counted, neither accepted nor rejected;
    docs/economics.md, "fltrust trust bit")."""
    names = tuple(circuit.client_reveals)
    if "trust_bit" not in names:
        return True
    return int(revealed[names.index("trust_bit")]) != 0
