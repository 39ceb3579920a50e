"""Secure fedavg-nb (protocol.md §3.3): projection test, ‖x‖² ≤ τ², open Σ x_i at degree t.

Largest magnitudes: every coordinate of an accepted x is at most 2T < 2^20 (scaled), so the
opened sum is at most n·2T; Σx² < d·(2T)² < 2^59. Output: Σ x_i / (2^{f+1}·n_accepted).
Error against the plaintext mean: at most 2^-f per coordinate (one stochastic-rounding step,
averaged), plus float32 rounding.
"""

from __future__ import annotations

from fractions import Fraction

from phalanx.errors import Reject
from phalanx.rules.base import RuleContext
from phalanx.rules.fedavg import FedAvgNormBounded
from phalanx.rules.secure.vector import MIN_ROWS, NormCircuit


def make_circuit(rule: FedAvgNormBounded, ctx: RuleContext, *, frac_bits: int,
                 rows: int = MIN_ROWS) -> NormCircuit:
    """The norm-bounded mean: the rule's own bound τ(1 + slack) is the proof's, exactly."""
    return NormCircuit(dim=ctx.dim, frac_bits=frac_bits, rows=rows,
                       sq_max=Fraction(rule.norm_bound()) ** 2, sq_min=None,
                       norm_reason=Reject.NORM_BOUND)
