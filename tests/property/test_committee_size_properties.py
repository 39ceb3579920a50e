"""Committee tails (protocol.md §3.5): brute-force agreement, limits and monotonicity."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from phalanx.mpc.committee_size import (
    Binomial,
    Hypergeometric,
    Kind,
    compute_binomial_tail,
    compute_hypergeometric_tail,
    compute_point,
    find_smallest_safe,
)

fractions = st.builds(
    lambda a, b: Fraction(a % b, b), st.integers(0, 10**6), st.integers(2, 10**6)
)


@st.composite
def committees(draw: st.DrawFn, max_m: int = 40) -> tuple[int, int]:
    m = draw(st.integers(1, max_m))
    return m, draw(st.integers(0, m))


def brute_binomial(m: int, t: int, f: Fraction) -> Fraction:
    return sum(
        (math.comb(m, k) * f**k * (1 - f) ** (m - k) for k in range(t + 1, m + 1)), Fraction(0)
    )


@given(committees(), fractions)
def test_binomial_matches_direct_sum(mt: tuple[int, int], f: Fraction) -> None:
    m, t = mt
    assert compute_binomial_tail(m, t, f) == brute_binomial(m, t, f)


@given(st.integers(1, 9), st.data())
def test_hypergeometric_matches_subset_enumeration(n: int, data: st.DataObject) -> None:
    # Prepare: peers 0..K-1 are corrupt; count every m-subset with more than t of them
    bad = data.draw(st.integers(0, n))
    m = data.draw(st.integers(1, n))
    t = data.draw(st.integers(0, m))
    subsets = list(itertools.combinations(range(n), m))
    hits = sum(1 for s in subsets if sum(1 for p in s if p < bad) > t)
    # Execute / Assert
    assert compute_hypergeometric_tail(m, t, n, bad) == Fraction(hits, len(subsets))


@given(committees(max_m=30), st.integers(1, 50), st.integers(1, 4))
def test_hypergeometric_close_to_binomial(mt: tuple[int, int], scale: int, num: int) -> None:
    # Diaconis–Freedman (1980): sampling m of N without vs with replacement differ by <= 4m/N in
    # total variation, so the tails differ by at most that much.
    m, t = mt
    n = 40 * scale * m
    bad = n * num // 10
    hyper = compute_hypergeometric_tail(m, t, n, bad)
    binom = compute_binomial_tail(m, t, Fraction(bad, n))
    assert abs(hyper - binom) <= Fraction(4 * m, n)


def test_hypergeometric_converges_as_population_grows() -> None:
    # Prepare
    binom = compute_binomial_tail(31, 10, Fraction(1, 10))
    # Execute: the relative gap at N = 10^2 .. 10^6 (K = N / 10 exactly)
    gaps = [
        abs(compute_hypergeometric_tail(31, 10, n, n // 10) - binom) / binom
        for n in (100, 1000, 10**4, 10**5, 10**6)
    ]
    # Assert: it shrinks like 1/N, to 0.03% at a million peers
    assert all(b < a / 8 for a, b in itertools.pairwise(gaps[1:]))
    assert gaps[-1] < Fraction(1, 2000)


@given(committees(), fractions, fractions)
def test_binomial_monotone_in_corrupt_fraction(
    mt: tuple[int, int], f: Fraction, g: Fraction
) -> None:
    m, t = mt
    lo, hi = min(f, g), max(f, g)
    assert compute_binomial_tail(m, t, lo) <= compute_binomial_tail(m, t, hi)


@given(st.integers(4, 200), st.data())
def test_hypergeometric_monotone_in_corrupt_peers(n: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(1, min(n, 40)))
    t = data.draw(st.integers(0, m))
    bad = data.draw(st.integers(0, n - 1))
    more = compute_hypergeometric_tail(m, t, n, bad + 1)
    assert compute_hypergeometric_tail(m, t, n, bad) <= more


@given(committees(), fractions)
def test_tail_grows_with_committee_size(mt: tuple[int, int], f: Fraction) -> None:
    # For a fixed t an extra seat can only add corrupt members: larger m never helps.
    m, t = mt
    tail = compute_binomial_tail(m, t, f)
    assert 0 <= tail <= 1
    assert tail <= compute_binomial_tail(m + 1, t, f)


@given(
    st.integers(1, 45),
    st.sampled_from([Fraction(1, 10**3), Fraction(1, 10**6), Fraction(1, 10**9)]),
    st.sampled_from([None, 300, 10**4, 10**7]),
    st.sampled_from(list(Kind)),
)
def test_search_screen_never_changes_the_answer(
    percent: int, failure: Fraction, peers: int | None, kind: Kind
) -> None:
    # Prepare: the search skips committees by a float screen; an exact scan must agree
    f = Fraction(percent, 100)
    model = Binomial(f) if peers is None else Hypergeometric(peers, peers * percent // 100)
    limit = 120
    expected = None
    for t in range(1, limit + 1):
        point = compute_point(model, t=t, kind=kind, failure=failure)
        if point is None or point.safe:
            expected = point
            break
    # Execute / Assert
    assert find_smallest_safe(model, kind=kind, failure=failure, search_limit=limit) == expected
