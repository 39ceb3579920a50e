"""FedAvg (McMahan et al. 2017) and its norm-bounded variant fedavg-nb (protocol.md §3.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from phalanx.errors import Reject, require_positive
from phalanx.rules.base import (
    FloatMat,
    FloatVec,
    Rejection,
    Rule,
    RuleContext,
    check_shape_and_norm,
)

CLIP_MARGIN = 2.0**-20
"""Clients clip to bound·(1 − 2^-20): the float32 result's exact norm then stays ≤ bound (the
float64 norm errs by < d·2^-53, the float32 scale and products by 2^-24 each, for d < 2^28)."""


def accurate_norm(vec: FloatVec) -> float:
    """‖vec‖ accumulated in float64 (every float32 square is exact there; relative error
    < d·2^-53), unlike ``base.l2_norm``'s float32 BLAS dot: what a client scales by."""
    return float(np.sqrt(np.einsum("i,i->", vec, vec, dtype=np.float64)))


def clip_within(vec: FloatVec, bound: float) -> FloatVec:
    """``vec · min(1, bound/‖vec‖)`` whose exact norm is at most ``bound`` (a new array): the
    client side of fedavg-nb and cc, so that the secure encoding (which rounds each coordinate
    toward zero where it must) always fits the circuit's exact norm check (docs/mpc.md)."""
    v = np.asarray(vec, dtype=np.float32).reshape(-1)
    target = bound * (1.0 - CLIP_MARGIN)
    norm = accurate_norm(v)
    if norm <= target or norm == 0.0:
        return v.copy()
    return (v * np.float32(target / norm)).astype(np.float32, copy=False)


@dataclass(frozen=True)
class FedAvg(Rule):
    """The plain mean of the inputs: no defence, the baseline every attack is measured against."""

    name: ClassVar[str] = "fedavg"

    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        mean: FloatVec = accepted.mean(axis=0, dtype=np.float32)
        return mean


@dataclass(frozen=True)
class FedAvgNormBounded(Rule):
    """Norm-bounded mean: clients clip to ``tau``, servers check ‖x‖ ≤ tau (Sun et al. 2019).

    Fixed-point bound (secure backend): every opened coordinate of Σ x_i is at most n·tau.
    """

    name: ClassVar[str] = "fedavg-nb"
    secure_compatible: ClassVar[bool] = True
    tau: float = 1.0
    #: relative slack on the norm check, for the rounding of a clipped float32 vector
    slack: float = 1e-4

    def __post_init__(self) -> None:
        require_positive("tau", self.tau)

    def prepare(self, update: FloatVec, ctx: RuleContext) -> FloatVec:
        return clip_within(np.asarray(update, dtype=np.float32), self.tau)

    def check(self, prepared: FloatVec, ctx: RuleContext) -> Rejection | None:
        basic, norm = check_shape_and_norm(prepared, ctx)
        if basic is not None:
            return basic
        if not norm <= self.norm_bound():
            return Rejection(-1, Reject.NORM_BOUND, f"norm {norm:.6g} > tau={self.tau}")
        return None

    def norm_bound(self) -> float:
        """The bound ``check`` puts on ‖x‖: tau·(1 + slack) (the secure circuit's, exactly)."""
        return self.tau * (1.0 + self.slack)

    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        mean: FloatVec = accepted.mean(axis=0, dtype=np.float32)
        return mean
