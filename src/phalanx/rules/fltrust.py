"""FLTrust (Cao et al., NDSS 2021) in the normalized form of protocol.md §3.3.

Clients normalize to a public norm nu: x = g·nu/‖g‖. With ĝ_0 the root-dataset update g_0
normalized to nu, the trust weight of x is w = max(0, ⟨x, ĝ_0⟩)/⟨ĝ_0, ĝ_0⟩ = ReLU(cos(g, g_0)), and
the output is (‖g_0‖/nu) · Σ w_i x_i / Σ w_i — FLTrust's ‖g_0‖ · Σ TS_i ḡ_i / Σ TS_i. When every
weight is 0 the output is the zero update (the model stays). Revealed beyond the output: D = Σ w_i.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from phalanx.errors import ConfigError, Reject, require_positive
from phalanx.rules.base import (
    FloatMat,
    FloatVec,
    Rejection,
    Rule,
    RuleContext,
    check_shape_and_norm,
    l2_norm,
)
from phalanx.rules.fedavg import accurate_norm


@dataclass(frozen=True)
class FLTrust(Rule):
    """Trust-weighted mean of normalized updates, the weights from the root-data update g_0."""

    name: ClassVar[str] = "fltrust"
    secure_compatible: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = True
    nu: float = 1.0
    #: relative tolerance of the norm check ‖x‖² ∈ nu²(1 ± delta)
    delta: float = 0.01

    def __post_init__(self) -> None:
        require_positive("nu", self.nu)
        require_positive("delta", self.delta)

    def prepare(self, update: FloatVec, ctx: RuleContext) -> FloatVec:
        g = np.asarray(update, dtype=np.float32)
        norm = accurate_norm(g)  # float64: the exact ‖x‖ is nu to ~2^-23 (docs/mpc.md)
        if norm == 0.0:
            return np.zeros_like(g)
        if norm < 1e-30:  # nu/norm would overflow float32: scale in float64
            return (g.astype(np.float64) * (self.nu / norm)).astype(np.float32)
        return (g * np.float32(self.nu / norm)).astype(np.float32, copy=False)

    def check(self, prepared: FloatVec, ctx: RuleContext) -> Rejection | None:
        basic, norm = check_shape_and_norm(prepared, ctx)
        if basic is not None:
            return basic
        sq = norm**2
        lo, hi = self.norm_sq_range()
        if not lo <= sq <= hi:
            return Rejection(-1, Reject.NORM_RANGE, f"‖x‖²={sq:.6g} outside [{lo:.6g}, {hi:.6g}]")
        return None

    def norm_sq_range(self) -> tuple[float, float]:
        """The range ``check`` puts ‖x‖² in: nu²(1 ± delta) (the secure circuit's, exactly)."""
        return self.nu**2 * (1 - self.delta), self.nu**2 * (1 + self.delta)

    def normalized_reference(self, ctx: RuleContext) -> FloatVec:
        """ĝ_0 = g_0 · nu/‖g_0‖ (zero if g_0 is zero)."""
        return self.prepare(self.reference_of(ctx), ctx)

    def reference_of(self, ctx: RuleContext) -> FloatVec:
        """g_0, the public root-dataset update (ConfigError when the context lacks it)."""
        if ctx.reference is None:
            raise ConfigError(f"rule {self.name} needs ctx.reference (got None)")
        return ctx.reference

    def trust_weights(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        """w_i = max(0, ⟨x_i, ĝ_0⟩) / ⟨ĝ_0, ĝ_0⟩, one matrix-vector product."""
        g0 = self.normalized_reference(ctx)
        g0_sq = float(np.dot(g0, g0))
        if g0_sq == 0.0:
            return np.zeros(accepted.shape[0], np.float32)
        weights: FloatVec = np.maximum(accepted @ g0, np.float32(0)) / np.float32(g0_sq)
        return weights.astype(np.float32, copy=False)

    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        return self.combine_and_reveal(accepted, ctx)[0]

    def combine_and_reveal(
        self, accepted: FloatMat, ctx: RuleContext
    ) -> tuple[FloatVec, dict[str, float]]:
        """Two passes over the inputs: the trust weights, then the weighted sum."""
        weights = self.trust_weights(accepted, ctx)
        total = float(weights.sum(dtype=np.float64))
        revealed = {"trust_weight_sum": total}
        if total == 0.0:
            return np.zeros(ctx.dim, np.float32), revealed
        scale = l2_norm(self.reference_of(ctx)) / self.nu / total
        out: FloatVec = (weights @ accepted) * np.float32(scale)
        return out, revealed
