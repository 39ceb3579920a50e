"""Secure rsa (protocol.md §3.3): signs as two bit vectors a, b with s = a − b.

Identities per coordinate: a_j(a_j + b_j − 1) = 0 and b_j(b_j − 1) = 0, which together say
(a_j, b_j) ∈ {(0,0), (1,0), (0,1)} — the spec's a² = a, b² = b, ab = 0 in two products instead
of three. One random combination Σ_j ρ_j a_j(a_j + b_j − 1) + σ_j b_j(b_j − 1) is opened (reason
SIGN_DOMAIN). The consistency value reuses the pass's Σ ρ_j a_j and Σ σ_j b_j, so it costs nothing.
Bits cannot wrap, so no projection test is needed. Output η·Σ(a_i − b_i), exact (|sum| ≤ n).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import Reject
from phalanx.mpc import field as F
from phalanx.mpc.checks import sign_pass
from phalanx.mpc.circuit import ClientSecrets, ClientShares, FinalShare, LocalResult
from phalanx.mpc.messages import OpeningKind, as_field
from phalanx.mpc.prg import Prg, derive
from phalanx.rules.base import RuleContext
from phalanx.rules.rsa import RobustStochasticAggregation

P = F.P


class SignCircuit:
    """rsa compiled to shares of (a, b)."""

    vector_labels: tuple[str, ...] = ("a", "b")
    check_reasons: tuple[Reject, ...] = (Reject.SIGN_DOMAIN,)
    client_reveals: tuple[str, ...] = ()
    streams = False  # sign_pass takes whole vectors

    def __init__(self, rule: RobustStochasticAggregation, ctx: RuleContext) -> None:
        self.d, self.eta = ctx.dim, rule.eta
        self.rho = np.zeros(0, np.uint64)
        self.sigma = np.zeros(0, np.uint64)
        self.gamma = 0

    def client_secrets(self, prepared: NDArray[np.float32], prg: Prg) -> ClientSecrets:
        """a = [s = 1], b = [s = −1]; a value outside {−1, 0, 1} is sent as a = 2 (best effort:
        it is not a bit, so the servers' check fails)."""
        s = np.asarray(prepared)
        bad = ~np.isin(s, (-1.0, 0.0, 1.0))
        a = np.where(s == 1.0, 1, np.where(bad, 2, 0)).astype(np.uint64)
        b = (s == -1.0).astype(np.uint64)
        return ClientSecrets((a, b), np.array([prg.field_element()], np.uint64))

    def item_lengths(self) -> dict[str, int]:
        return {"a": self.d, "b": self.d, "s1": 1, "s2": 0}

    def client_response(self, secrets: ClientSecrets, coin1: bytes) -> F.FieldVec:
        return np.zeros(0, np.uint64)

    def begin(self, coin1: bytes, coin2: bytes) -> None:
        g = Prg(derive(coin2, "rsa"))
        self.rho = g.field_elements(self.d)
        self.sigma = g.field_elements(self.d)
        self.gamma = g.field_element()

    def new_accumulator(self) -> F.FieldVec:
        return np.zeros(self.d, np.uint64)

    def server_process(self, shares: ClientShares, acc: Any | None) -> LocalResult:
        a, b = (as_field(v) for v in shares.vectors)
        quad, lin_a, lin_b = sign_pass(a, b, self.rho, self.sigma, acc)
        cons = (int(shares.scalars1[0]) + lin_a + self.gamma * lin_b) % P
        return LocalResult(cons, (quad,))

    def server_process_batch(self, batch: Sequence[ClientShares],
                             acc: Any | None) -> list[LocalResult]:
        return [self.server_process(sh, acc) for sh in batch]

    def server_rollback(self, shares: ClientShares, local: LocalResult, acc: Any) -> None:
        a, b = (as_field(v) for v in shares.vectors)
        acc[:] = F.add(F.sub(acc, a), b)

    def final_shares(self, acc: Any) -> list[FinalShare]:
        return [FinalShare(OpeningKind.AGGREGATE, acc, False)]

    def finish(self, opened: dict[OpeningKind, F.FieldVec], n_accepted: int) -> tuple[
            NDArray[np.float32], dict[str, float]]:
        total = F.centered(opened[OpeningKind.AGGREGATE]).astype(np.float32)
        return (np.float32(self.eta) * total).astype(np.float32), {}

    def non_binary(self, secrets: ClientSecrets) -> ClientSecrets:
        """Client fault: a_0 = 2, b_0 = 1 (the difference 1 is a valid sign, the bits are not)."""
        a, b = (v.copy() for v in secrets.vectors)
        a[0], b[0] = 2, 1
        return ClientSecrets((a, b), secrets.scalars)
