"""Robust stochastic aggregation, sign-based (Li et al., AAAI 2019), as in protocol.md §3.3."""

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
    check_shape_and_finite,
)


@dataclass(frozen=True)
class RobustStochasticAggregation(Rule):
    """Clients send s = sign(g) ∈ {−1, 0, 1}^d; the output is eta · Σ_i s_i.

    Every input coordinate is bounded by 1, so no projection test is needed on the secure side;
    the opened sum is at most n in magnitude.
    """

    name: ClassVar[str] = "rsa"
    secure_compatible: ClassVar[bool] = True
    eta: float = 1e-3

    def __post_init__(self) -> None:
        require_positive("eta", self.eta)

    def prepare(self, update: FloatVec, ctx: RuleContext) -> FloatVec:
        return np.sign(np.asarray(update, dtype=np.float32)).astype(np.float32)

    def check(self, prepared: FloatVec, ctx: RuleContext) -> Rejection | None:
        basic = check_shape_and_finite(prepared, ctx)
        if basic is not None:
            return basic
        if not bool(np.isin(prepared, (-1.0, 0.0, 1.0)).all()):
            return Rejection(-1, Reject.SIGN_DOMAIN, "a coordinate outside {-1, 0, 1}")
        return None

    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        total: FloatVec = accepted.sum(axis=0, dtype=np.float32)
        return (np.float32(self.eta) * total).astype(np.float32)
