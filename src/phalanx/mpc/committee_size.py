"""Committee sizing: how likely is a random committee to hold more than t corrupt members?

A committee of m servers with threshold t is private and correct (or aborts) while at most t members
are corrupt; m >= 3t + 1 is required and m >= 4t + 1 also identifies cheating servers (protocol.md
§2, §3.4). With a corrupt fraction f of the peers, the number X of corrupt members of a random
committee is

- binomial: X ~ Bin(m, f), each seat corrupt independently (an infinite population of peers), or
- hypergeometric: the committee is drawn without replacement from N peers of which
  K = floor(f * N) are corrupt (the largest integer count whose fraction does not exceed f).

The failure probability of a (t, m) committee is the tail P[X > t] (protocol.md §3.5). Everything
here is exact rational arithmetic on Python integers: there is no rounding, so a tail of 1e-300 is
as exact as one of 0.5, and "tail < target" is decided without floating point error.

For a fixed t the tail grows with m (an extra seat can only add corrupt members), so for each t only
the smallest admissible committee matters: m = 3t + 1 (kind DETECT) or m = 4t + 1 (kind IDENTIFY).
:func:`compute_sizing_table` lists those, and :func:`find_smallest_safe` finds the smallest t (hence
the smallest m) whose tail is below the target. See docs/mpc-committee.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction

from phalanx.errors import ConfigError

#: How far find_smallest_safe scans by default; m = 4 * 1000 + 1 still runs in well under a second.
DEFAULT_SEARCH_LIMIT = 1000
#: Largest population for the float screen of the search (lgamma(N) keeps an absolute error far
#: below the ln 2 margin up to here); larger N is searched with exact arithmetic only.
MAX_SCREEN_PEERS = 10**12


class Kind(Enum):
    """The two committee sizes of protocol.md §2, as the factor k of m = k * t + 1."""

    DETECT = 3  # m = 3t + 1: privacy, and correctness or abort, against t corrupt servers
    IDENTIFY = 4  # m = 4t + 1: cheating servers are also identified and the round completes


@dataclass(frozen=True, slots=True)
class Binomial:
    """Each seat is corrupt independently with probability ``corrupt`` (infinite population)."""

    corrupt: Fraction

    def __post_init__(self) -> None:
        require_fraction_in(self.corrupt, "corrupt", low_open=False, high_open=True)


@dataclass(frozen=True, slots=True)
class Hypergeometric:
    """Seats drawn without replacement from ``peers`` peers, ``corrupt_peers`` of them corrupt."""

    peers: int
    corrupt_peers: int

    def __post_init__(self) -> None:
        if self.peers < 1:
            raise ConfigError(f"peers N={self.peers} must be >= 1")
        if not 0 <= self.corrupt_peers <= self.peers:
            raise ConfigError(
                f"corrupt_peers K={self.corrupt_peers} must lie in [0, N={self.peers}]"
            )


Model = Binomial | Hypergeometric


@dataclass(frozen=True, slots=True)
class SizingPoint:
    """One committee (t, m) and its exact tail P[more than t of m corrupt]; safe: tail < target."""

    t: int
    m: int
    tail: Fraction
    safe: bool


@dataclass(frozen=True, slots=True)
class SizingRow:
    """For one threshold t: the DETECT committee (3t + 1) and the IDENTIFY one (4t + 1).

    A point is ``None`` when its committee does not fit in the population (m > N).
    """

    t: int
    detect: SizingPoint | None
    identify: SizingPoint | None


@dataclass(frozen=True, slots=True)
class SizingTable:
    """The table for one model: rows t = 1..max_t and the smallest safe committee of each kind."""

    model: Model
    failure: Fraction
    rows: tuple[SizingRow, ...]
    smallest_detect: SizingPoint | None
    smallest_identify: SizingPoint | None


def to_fraction(value: float | int | str | Fraction, name: str) -> Fraction:
    """Read a probability exactly: floats by their shortest decimal repr (0.1 -> 1/10), strings as
    decimals or ratios ("1e-6", "1/3"). Raises ConfigError naming ``name`` on anything else."""
    try:
        if isinstance(value, float):
            return Fraction(repr(value))
        return Fraction(value)
    except (ValueError, ZeroDivisionError, TypeError) as e:
        raise ConfigError(f"{name}={value!r} is not a number") from e


def require_fraction_in(value: Fraction, name: str, *, low_open: bool, high_open: bool) -> None:
    """Raise ConfigError unless ``value`` lies in the interval (0 or [0, to 1) or 1]."""
    too_low = value <= 0 if low_open else value < 0
    too_high = value >= 1 if high_open else value > 1
    if too_low or too_high:
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ConfigError(f"{name}={float(value):g} must lie in {interval}")


def compute_corrupt_peers(peers: int, corrupt: Fraction) -> int:
    """K = floor(f * N): the most corrupt peers a corrupt fraction of at most f allows."""
    return math.floor(corrupt * peers)


def compute_committee_size(t: int, kind: Kind) -> int:
    """m = 3t + 1 (DETECT) or 4t + 1 (IDENTIFY), protocol.md §2."""
    return kind.value * t + 1


def compute_binomial_tail(m: int, t: int, corrupt: Fraction) -> Fraction:
    """P[X > t] for X ~ Bin(m, f), exactly.

    With f = a / b and c = b - a, the k-th term is C(m, k) a^k c^(m-k) / b^m; the terms are built
    by the exact integer recurrence T_{k+1} = T_k (m - k) a / ((k + 1) c), and the shorter side of
    the distribution is summed.
    """
    _require_committee(m, t)
    if t >= m:
        return Fraction(0)
    require_fraction_in(corrupt, "corrupt", low_open=False, high_open=True)
    a, b = corrupt.numerator, corrupt.denominator
    c = b - a
    if a == 0:
        return Fraction(0)
    total = b**m
    # Lower side: sum_{k <= t} T_k with T_0 = c^m
    if t < m - t:
        term, low = c**m, 0
        for k in range(t + 1):
            low += term
            term = term * (m - k) * a // ((k + 1) * c)
        return Fraction(total - low, total)
    # Upper side: sum_{k > t} T_k walked down from T_m = a^m
    term, high = a**m, 0
    for k in range(m, t, -1):
        high += term
        term = term * k * c // ((m - k + 1) * a)
    return Fraction(high, total)


def compute_hypergeometric_tail(m: int, t: int, peers: int, corrupt_peers: int) -> Fraction:
    """P[X > t] for X the corrupt members of m seats drawn without replacement, exactly.

    H_k = C(K, k) C(N - K, m - k) over C(N, m), summed for k in [max(0, m - (N - K)), min(m, K)];
    consecutive terms follow H_{k+1} = H_k (K - k)(m - k) / ((k + 1)(N - K - m + k + 1)).
    Raises ConfigError if the committee does not fit (m > N).
    """
    _require_committee(m, t)
    model = Hypergeometric(peers, corrupt_peers)
    if m > peers:
        raise ConfigError(f"committee m={m} needs peers N={peers} >= m")
    n, k_bad = model.peers, model.corrupt_peers
    k_lo, k_hi = max(0, m - (n - k_bad)), min(m, k_bad)
    if t >= k_hi:
        return Fraction(0)
    total = math.comb(n, m)
    if t < k_lo:
        return Fraction(1)
    # Sum the shorter side: k in [k_lo, t] (then complement) or k in [t + 1, k_hi]
    lower = t - k_lo < k_hi - t
    first, last = (k_lo, t) if lower else (t + 1, k_hi)
    term = math.comb(k_bad, first) * math.comb(n - k_bad, m - first)
    acc = 0
    for k in range(first, last + 1):
        acc += term
        if k < last:
            term = term * (k_bad - k) * (m - k) // ((k + 1) * (n - k_bad - m + k + 1))
    return Fraction(total - acc if lower else acc, total)


def compute_tail(model: Model, *, m: int, t: int) -> Fraction:
    """P[more than t of the m committee members are corrupt] under ``model``."""
    if isinstance(model, Binomial):
        return compute_binomial_tail(m, t, model.corrupt)
    return compute_hypergeometric_tail(m, t, model.peers, model.corrupt_peers)


def compute_point(model: Model, *, t: int, kind: Kind, failure: Fraction) -> SizingPoint | None:
    """The committee of ``kind`` for threshold t, or None when it does not fit in the population."""
    m = compute_committee_size(t, kind)
    if isinstance(model, Hypergeometric) and m > model.peers:
        return None
    tail = compute_tail(model, m=m, t=t)
    return SizingPoint(t=t, m=m, tail=tail, safe=tail < failure)


def find_smallest_safe(
    model: Model,
    *,
    kind: Kind,
    failure: Fraction,
    search_limit: int = DEFAULT_SEARCH_LIMIT,
) -> SizingPoint | None:
    """The smallest t (and so the smallest m = kind * t + 1) whose tail is below ``failure``.

    Scans t = 1, 2, ... up to ``search_limit`` (or until m no longer fits in N peers); returns None
    if no committee in that range is safe. Since the tail at fixed t only grows with m, no larger
    committee with a smaller t can be safe when this one is the first.
    """
    require_fraction_in(failure, "failure", low_open=True, high_open=True)
    if search_limit < 1:
        raise ConfigError(f"search_limit={search_limit} must be >= 1")
    for t in range(1, search_limit + 1):
        m = compute_committee_size(t, kind)
        if isinstance(model, Hypergeometric) and m > model.peers:
            return None
        if _is_surely_unsafe(model, m=m, t=t, failure=failure):
            continue
        point = compute_point(model, t=t, kind=kind, failure=failure)
        if point is None:
            return None
        if point.safe:
            return point
    return None


def compute_sizing_table(
    model: Model,
    *,
    failure: Fraction,
    max_t: int = 10,
    search_limit: int = DEFAULT_SEARCH_LIMIT,
) -> SizingTable:
    """Rows t = 1..max_t (DETECT and IDENTIFY committees) and the smallest safe one of each kind.

    The smallest safe committees are searched up to ``search_limit``, beyond the displayed rows.
    """
    require_fraction_in(failure, "failure", low_open=True, high_open=True)
    if max_t < 1:
        raise ConfigError(f"max_t={max_t} must be >= 1")
    rows = tuple(
        SizingRow(
            t=t,
            detect=compute_point(model, t=t, kind=Kind.DETECT, failure=failure),
            identify=compute_point(model, t=t, kind=Kind.IDENTIFY, failure=failure),
        )
        for t in range(1, max_t + 1)
    )
    limit = max(search_limit, max_t)
    return SizingTable(
        model=model,
        failure=failure,
        rows=rows,
        smallest_detect=find_smallest_safe(
            model, kind=Kind.DETECT, failure=failure, search_limit=limit
        ),
        smallest_identify=find_smallest_safe(
            model, kind=Kind.IDENTIFY, failure=failure, search_limit=limit
        ),
    )


def compute_log10(value: Fraction) -> float:
    """log10 of a positive fraction, without underflow (a tail can be far below 1e-308)."""
    if value <= 0:
        raise ConfigError(f"value={value} must be > 0 to take its log10")
    return math.log10(value.numerator) - math.log10(value.denominator)


def _is_surely_unsafe(model: Model, *, m: int, t: int, failure: Fraction) -> bool:
    """A fast screen for the search: True only if one term P[X = k] with k > t (at the mode, or
    t + 1 if the mode is <= t), a lower bound of the tail, is above twice the target. It is
    computed in floating point (lgamma) with an error in the log far below the margin ln 2 for
    N <= MAX_SCREEN_PEERS; the exact tail decides every committee the screen does not rule out."""
    if isinstance(model, Binomial):
        a, b = model.corrupt.numerator, model.corrupt.denominator
        k = max(t + 1, (m + 1) * a // b)
        if a == 0 or k > m:
            return False
        log_f, log_1mf = math.log(a) - math.log(b), math.log(b - a) - math.log(b)
        log_term = _log_comb(m, k) + k * log_f + (m - k) * log_1mf
    else:
        n, bad = model.peers, model.corrupt_peers
        k = max(t + 1, (m + 1) * (bad + 1) // (n + 2))
        if n > MAX_SCREEN_PEERS or k > min(m, bad) or m - k > n - bad:
            return False
        log_term = _log_comb(bad, k) + _log_comb(n - bad, m - k) - _log_comb(n, m)
    log_failure = math.log(failure.numerator) - math.log(failure.denominator)
    return log_term > log_failure + math.log(2)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _require_committee(m: int, t: int) -> None:
    if m < 1:
        raise ConfigError(f"committee size m={m} must be >= 1")
    if t < 0:
        raise ConfigError(f"threshold t={t} must be >= 0")
