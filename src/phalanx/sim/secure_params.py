"""Secure-run parameters the simulator chooses for the user: frac_bits, and the capture warning.

``choose_frac_bits`` finds the largest fixed-point precision the rule's circuit accepts for the
model's dimension and the number of clients (too many bits and squared norms or weighted sums
could wrap mod p: the circuit refuses with a ConfigError). ``capture_warning`` compares the
configured committee with the calculator of ``phalanx committee`` (mpc/committee_size.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from phalanx.errors import ConfigError

#: the precision tried first (the secure backend's default) and the lowest one accepted
MAX_AUTO_FRAC_BITS = 16
MIN_FRAC_BITS = 4
#: warn when a round's committee is captured (more than t corrupt members) more often than this
CAPTURE_WARNING = Fraction(1, 1000)


def choose_frac_bits(rule_name: str, rule_params: Mapping[str, Any], dim: int,
                     n_clients: int, *, m: int = 5, t: int = 1) -> int:
    """The largest f in [MIN_FRAC_BITS, MAX_AUTO_FRAC_BITS] whose circuit ``make_circuit``
    accepts for ``n_clients`` inputs of dimension ``dim``; ConfigError when none does."""
    from phalanx.rules import RuleContext, make_rule
    from phalanx.rules.secure import SecureParams, make_circuit

    if dim < 1 or n_clients < 1:
        raise ConfigError(f"dim={dim} and n_clients={n_clients} must be >= 1")
    rule = make_rule(rule_name, secure=True, **dict(rule_params))
    reference = np.zeros(dim, np.float32) if rule.needs_reference else None
    ctx = RuleContext(dim=dim, reference=reference)
    reasons = []
    for frac_bits in range(MAX_AUTO_FRAC_BITS, MIN_FRAC_BITS - 1, -1):
        try:
            make_circuit(rule, ctx, SecureParams(m=m, t=t, frac_bits=frac_bits), n_clients)
        except ConfigError as e:
            reasons.append(str(e))
            continue
        return frac_bits
    raise ConfigError(f"frac_bits: no f in [{MIN_FRAC_BITS}, {MAX_AUTO_FRAC_BITS}] is safe for "
                      f"rule={rule_name!r}, d={dim}, n={n_clients} ({reasons[-1]})")


def capture_warning(peers: int, malicious: float, committee: int, threshold: int) -> str | None:
    """One line when P(more than ``threshold`` of ``committee`` members corrupt) > 10^-3.

    Committees are drawn without replacement from ``peers`` of which round(malicious · peers)
    are malicious (the simulator's attackers); the line names the smallest committee the
    calculator (``phalanx committee``) finds below 10^-3, of both kinds.
    """
    from phalanx.mpc import committee_size as cs

    bad = int(round(malicious * peers))
    if bad == 0 or committee > peers:
        return None
    model = cs.Hypergeometric(peers, bad)
    tail = cs.compute_tail(model, m=committee, t=threshold)
    if tail <= CAPTURE_WARNING:
        return None
    advice = []
    for kind, label in ((cs.Kind.DETECT, "abort on cheating"),
                        (cs.Kind.IDENTIFY, "cheaters identified")):
        point = cs.find_smallest_safe(model, kind=kind, failure=CAPTURE_WARNING)
        advice.append(f"--committee {point.m} --threshold {point.t} ({label})" if point
                      else f"none fits {peers} peers ({label})")
    return (f"warning: committee={committee} threshold={threshold} is captured (> {threshold} "
            f"of {committee} malicious) with probability {float(tail):.3g} per round at "
            f"{bad}/{peers} malicious peers; `phalanx committee --corrupt {bad}/{peers} "
            f"--failure 1e-3 --peers {peers}` chooses " + " or ".join(advice))
