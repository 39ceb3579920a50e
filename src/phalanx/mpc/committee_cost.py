"""Predicted cost of a secure aggregation at committee (m, t) (issue 13; ``phalanx committee``).

A model fitted to ``benchmarks/committee_scale.py`` runs (fltrust, n = 100, d = 10^5, seeded
sharing, the zero-sharing scheme ``mpc.dealt.choose_scheme`` picks; docs/performance.md), per
term so that it extrapolates in m, n and d the way the engine's work grows:

- per server: n·(2 ms + 8 ns·d) for opening, hashing and the fused pass of each upload;
  0.65 µs·n·m² for the per-client openings (each member unpacks and decodes m shares);
  2 ns·m²·d for the final degree-2t opening (fltrust); the re-randomization
  (CDI: 11 ns per unit of ``dealt.cost``, dealt: 16 ns) over n·6 + d coordinates.
- per client: 1.5e-7 s·d to encode and 6.5 ns·(m − t)·t·d to share (seeded sharing).
- upload per client: (m − t) packed 61-bit vectors of d coordinates.
The fit is within ±50 % on the measured points; it is a guide to choose m, not a benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

from phalanx.errors import ConfigError
from phalanx.mpc.dealt import choose_scheme, cost
from phalanx.mpc.przs import CDI_MAX_KEYS

CDI_KEYS_PER_PEER_PATH = CDI_MAX_KEYS
"""Where the per-peer protocol (protocol/committee.py) deals CDI PRZS keys (C(m, t) keys sent
at setup), larger key counts are refused; where ``choose_scheme`` picks dealt zero sharings
it deals those (ZERO_DEAL messages) and has no such limit."""
_UNIT_S = {"cdi": 11e-9, "dealt": 16e-9}
_CHECKS_PER_CLIENT = 6


@dataclass(frozen=True, slots=True)
class CostPrediction:
    """What one aggregation at (m, t) is predicted to cost, and who can run it."""

    m: int
    t: int
    zero: str
    server_s: float
    client_s: float
    upload_bytes: int
    engine_ok: bool
    per_peer_ok: bool
    contract_ok: bool

    @property
    def runnable(self) -> bool:
        """The in-process engine and the contract both accept the committee."""
        return self.engine_ok and self.contract_ok


def predict_cost(m: int, t: int, *, clients: int, dim: int,
                 max_committee: int) -> CostPrediction:
    """The fitted prediction at (m, t) for n = ``clients`` updates of ``dim`` coordinates;
    ``max_committee``: the contract's MAX_COMMITTEE (the caller reads it from the chain)."""
    if clients < 1 or dim < 1:
        raise ConfigError(f"clients={clients} and dim={dim} must be >= 1")
    zero = choose_scheme(m, t)
    length = clients * _CHECKS_PER_CLIENT + dim
    server = (clients * (2e-3 + 8e-9 * dim) + 6.5e-7 * clients * m * m + 2e-9 * m * m * dim
              + _UNIT_S[zero] * cost(zero, m, t) * length)
    client = 1.5e-7 * dim + 6.5e-9 * (m - t) * t * dim
    upload = (m - t) * ((61 * dim + 63) // 64) * 8
    return CostPrediction(m, t, zero, server, client, upload, engine_ok=m >= 3 * t + 1,
                          per_peer_ok=zero == "dealt" or comb(m, t) <= CDI_KEYS_PER_PEER_PATH,
                          contract_ok=m <= max_committee)
