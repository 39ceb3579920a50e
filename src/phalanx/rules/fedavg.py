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
    clip_to_norm,
)


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
        return clip_to_norm(np.asarray(update, dtype=np.float32), self.tau)

    def check(self, prepared: FloatVec, ctx: RuleContext) -> Rejection | None:
        basic, norm = check_shape_and_norm(prepared, ctx)
        if basic is not None:
            return basic
        if not norm <= self.tau * (1.0 + self.slack):
            return Rejection(-1, Reject.NORM_BOUND, f"norm {norm:.6g} > tau={self.tau}")
        return None

    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        mean: FloatVec = accepted.mean(axis=0, dtype=np.float32)
        return mean
