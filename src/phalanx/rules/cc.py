"""Centered clipping (Karimireddy, He & Jaggi, ICML 2021).

``cc`` is the one-iteration form with a public center v (last round's global update) and
client-side clipping, which compiles to the secure backend (protocol.md §3.3). ``cc-iter`` is the
original multi-iteration server-side form, a plaintext baseline only.
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
)
from phalanx.rules.fedavg import clip_within


def center_of(ctx: RuleContext) -> FloatVec:
    """The public center v; a zero vector when the context has none (the first round)."""
    if ctx.reference is None:
        return np.zeros(ctx.dim, np.float32)
    return ctx.reference


@dataclass(frozen=True)
class CenteredClipping(Rule):
    """One iteration: y = (g − v)·min(1, tau/‖g − v‖); output v + mean of valid y.

    Fixed-point bound: every coordinate of every y is at most tau, of Σ y_i at most n·tau.
    """

    name: ClassVar[str] = "cc"
    secure_compatible: ClassVar[bool] = True
    tau: float = 1.0
    slack: float = 1e-4

    def __post_init__(self) -> None:
        require_positive("tau", self.tau)

    def prepare(self, update: FloatVec, ctx: RuleContext) -> FloatVec:
        diff = np.asarray(update, dtype=np.float32) - center_of(ctx)
        return clip_within(diff, self.tau)

    def check(self, prepared: FloatVec, ctx: RuleContext) -> Rejection | None:
        basic, norm = check_shape_and_norm(prepared, ctx)
        if basic is not None:
            return basic
        if not norm <= self.norm_bound():
            return Rejection(-1, Reject.NORM_BOUND, f"norm {norm:.6g} > tau={self.tau}")
        return None

    def norm_bound(self) -> float:
        """The bound ``check`` puts on ‖y‖: tau·(1 + slack) (the secure circuit's, exactly)."""
        return self.tau * (1.0 + self.slack)

    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        out: FloatVec = center_of(ctx) + accepted.mean(axis=0, dtype=np.float32)
        return out


@dataclass(frozen=True)
class CenteredClippingIterative(Rule):
    """The server-side original: v ← v + mean_i clip(x_i − v, tau), ``iterations`` times."""

    name: ClassVar[str] = "cc-iter"
    tau: float = 1.0
    iterations: int = 3

    def __post_init__(self) -> None:
        require_positive("tau", self.tau)
        if self.iterations < 1:
            raise ConfigError(f"iterations={self.iterations} must be >= 1")

    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        v = center_of(ctx).astype(np.float32, copy=True)
        for _ in range(self.iterations):
            diffs = accepted - v
            norms = np.linalg.norm(diffs, axis=1)
            scale = np.minimum(1.0, self.tau / np.maximum(norms, 1e-12)).astype(np.float32)
            v = v + (diffs * scale[:, None]).mean(axis=0, dtype=np.float32)
        return v
