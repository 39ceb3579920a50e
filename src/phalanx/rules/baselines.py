"""Plaintext-only robust baselines: Krum, Multi-Krum, coordinate median, trimmed mean.

None of them compiles to the secure backend (they need comparisons or sorting across clients,
protocol.md §3.3); asking for them in secure mode is a ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ConfigError
from phalanx.rules.base import FloatMat, FloatVec, Rule, RuleContext


def pairwise_sq_distances(x: FloatMat) -> NDArray[np.float64]:
    """‖x_i − x_j‖² for all pairs, from the Gram matrix of the centred rows, in float64.

    Centring first (distances are translation-invariant) removes the common component that
    honest updates share; without it, ‖x_i‖² + ‖x_j‖² − 2⟨x_i, x_j⟩ cancels catastrophically for
    nearly parallel inputs, and a float32 Gram matrix picked the wrong update at cosine 0.999999
    (tests/unit/test_rules.py).
    """
    centred = np.asarray(x, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    gram = centred @ centred.T
    sq = np.diag(gram)
    dist = sq[:, None] + sq[None, :] - 2.0 * gram
    out: NDArray[np.float64] = np.maximum(dist, 0.0)
    return out


def krum_scores(x: FloatMat, f: int) -> NDArray[np.float64]:
    """Sum of squared distances to the n − f − 2 nearest others [Blanchard et al. 2017]."""
    n = x.shape[0]
    dist = pairwise_sq_distances(x)
    np.fill_diagonal(dist, np.inf)
    nearest = np.sort(dist, axis=1)[:, : n - f - 2]
    scores: NDArray[np.float64] = nearest.sum(axis=1)
    return scores


def krum_select(x: FloatMat, *, f: int, m: int = 1) -> NDArray[np.intp]:
    """Indices of the m updates with the least Krum score."""
    n = x.shape[0]
    if n <= 2 * f + 2:
        raise ConfigError(f"krum needs n > 2f + 2, got n={n}, f={f}")
    if not 1 <= m <= n:
        raise ConfigError(f"multi-krum selection m={m} must be in [1, n={n}]")
    return np.argsort(krum_scores(x, f), kind="stable")[:m]


@dataclass(frozen=True)
class Krum(Rule):
    """The single input closest to its n − f − 2 neighbours."""

    name: ClassVar[str] = "krum"

    def min_inputs(self, ctx: RuleContext) -> int:
        return 2 * ctx.num_byzantine + 3

    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        best: FloatVec = accepted[krum_select(accepted, f=ctx.num_byzantine)[0]].copy()
        return best


@dataclass(frozen=True)
class MultiKrum(Rule):
    """Mean of the ``select`` best inputs by Krum score (default n − f)."""

    name: ClassVar[str] = "multi-krum"
    select: int | None = None

    def min_inputs(self, ctx: RuleContext) -> int:
        return 2 * ctx.num_byzantine + 3

    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        m = self.select if self.select is not None else accepted.shape[0] - ctx.num_byzantine
        chosen = krum_select(accepted, f=ctx.num_byzantine, m=m)
        mean: FloatVec = accepted[chosen].mean(axis=0, dtype=np.float32)
        return mean


@dataclass(frozen=True)
class Median(Rule):
    """Coordinate-wise median [Yin et al. 2018]."""

    name: ClassVar[str] = "median"

    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        return np.median(accepted, axis=0).astype(np.float32)


@dataclass(frozen=True)
class TrimmedMean(Rule):
    """Coordinate-wise mean after dropping the ``num_byzantine`` largest and smallest values."""

    name: ClassVar[str] = "trimmed-mean"

    def min_inputs(self, ctx: RuleContext) -> int:
        return 2 * ctx.num_byzantine + 1

    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        n, f = accepted.shape[0], ctx.num_byzantine
        if n <= 2 * f:
            raise ConfigError(f"trimmed-mean needs n > 2f, got n={n}, f={f}")
        ordered = np.sort(accepted, axis=0)
        mean: FloatVec = ordered[f : n - f].mean(axis=0, dtype=np.float32)
        return mean
