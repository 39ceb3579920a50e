"""Secure cc, one iteration of centered clipping with a public center v (protocol.md §3.3).

Clients share y = clip(g − v, τ) (``rule.prepare``); the servers check it exactly as fedavg-nb
does and the output is v + the mean of the accepted y. Same bounds as fedavg-nb.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import Reject
from phalanx.mpc.field import FieldVec
from phalanx.mpc.messages import OpeningKind
from phalanx.rules.base import RuleContext
from phalanx.rules.cc import CenteredClipping, center_of
from phalanx.rules.secure.vector import MIN_ROWS, NormCircuit


class CenteredClippingCircuit(NormCircuit):
    """fedavg-nb's circuit with the public center added to the output."""

    def __init__(self, rule: CenteredClipping, ctx: RuleContext, *, frac_bits: int,
                 rows: int = MIN_ROWS) -> None:
        super().__init__(dim=ctx.dim, frac_bits=frac_bits, rows=rows,
                         sq_max=Fraction(rule.norm_bound()) ** 2, sq_min=None,
                         norm_reason=Reject.NORM_BOUND)
        self.center = center_of(ctx).astype(np.float32)

    def finish(self, opened: dict[OpeningKind, FieldVec], n_accepted: int) -> tuple[
            NDArray[np.float32], dict[str, Any]]:
        if n_accepted == 0:
            return np.zeros(self.d, np.float32), {}
        return (self.center + self.mean_of(opened, n_accepted)).astype(np.float32), {}
