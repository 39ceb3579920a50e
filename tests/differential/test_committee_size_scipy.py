"""Committee tails (protocol.md §3.5) against scipy.stats, an independent float implementation.

scipy is installed with scikit-learn (a declared dependency); the exact tails must agree with its
survival functions to float precision, including far out where the target 1e-6 lives.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from phalanx.mpc.committee_size import compute_binomial_tail, compute_hypergeometric_tail

stats = pytest.importorskip("scipy.stats", reason="scipy comes with scikit-learn; not installed")


@pytest.mark.parametrize(
    ("m", "t", "f"),
    [(4, 1, "0.1"), (55, 18, "0.1"), (121, 30, "0.1"), (229, 76, "0.2"), (1001, 333, "0.3")],
)
def test_binomial_tail_matches_scipy(m: int, t: int, f: str) -> None:
    exact = compute_binomial_tail(m, t, Fraction(f))
    assert float(exact) == pytest.approx(stats.binom.sf(t, m, float(f)), rel=1e-9)


@pytest.mark.parametrize(
    ("n", "bad", "m", "t"),
    [(100, 10, 4, 1), (1000, 100, 31, 10), (200, 20, 40, 13), (10**5, 2 * 10**4, 229, 76)],
)
def test_hypergeometric_tail_matches_scipy(n: int, bad: int, m: int, t: int) -> None:
    exact = compute_hypergeometric_tail(m, t, n, bad)
    assert float(exact) == pytest.approx(stats.hypergeom.sf(t, n, bad, m), rel=1e-9)
