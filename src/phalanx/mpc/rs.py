"""Reed–Solomon decoding of openings: detection, correction and identification (protocol.md §3.1).

The shares of a degree-D sharing held by n servers form a codeword of the [n, D+1] RS code.
Detection interpolates the first D+1 shares to the other points (vectorized syndromes: one
``combine_rows`` pass); for an opening longer than n it does so on one random linear
combination of the coordinates with the receiver's private coin (n·L multiply-adds instead of
(n − D − 1)·n·L: a nonzero error passes except with probability 1/p, as the shares are sent
before the coin is drawn and no sender can predict it). Correction runs Berlekamp–Welch on a
random linear combination of the coordinates, which locates every server whose share vector
is wrong except with probability 1/p per bad server, then removes those servers and verifies
the rest on *all* coordinates.
Up to ⌊(n − D − 1)/2⌋ errors are corrected, up to n − D − 1 detected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from phalanx.errors import ReconstructionError
from phalanx.mpc.field import FieldVec, P, combine_matrix, dot, inv, lagrange_coeffs
from phalanx.mpc.prg import Prg
from phalanx.mpc.shamir import point


@dataclass(frozen=True, slots=True)
class Opened:
    """A decoded opening: the value at 0 and the servers whose shares were wrong."""

    value: FieldVec
    bad: tuple[int, ...]


def syndromes(servers: Sequence[int], shares: FieldVec, degree: int) -> FieldVec:
    """For each share beyond the first D+1: its difference from the interpolated value.

    All zero ⇔ the shares lie on one polynomial of degree ≤ D. Shape (n − D − 1, L).
    """
    if len(servers) <= degree + 1:
        return np.zeros((0, shares.shape[1]), np.uint64)
    return combine_matrix(_syndrome_matrix(tuple(servers), degree), shares)


@lru_cache(maxsize=512)
def _syndrome_matrix(servers: tuple[int, ...], degree: int) -> FieldVec:
    """The (n − D − 1) × n syndrome coefficients of a server list (public, reused: every
    opening of a round has the same servers; computing them in Python cost 18 ms per opening
    at (31, 10))."""
    base = [point(j) for j in servers[: degree + 1]]
    rest = list(servers[degree + 1 :])
    coeffs = [lagrange_coeffs(base, point(j)) + [0] * k + [P - 1] + [0] * (len(rest) - k - 1)
              for k, j in enumerate(rest)]
    out = np.array(coeffs, np.uint64).reshape(len(rest), len(servers))
    out.setflags(write=False)
    return out


@lru_cache(maxsize=512)
def _interpolation_row(servers: tuple[int, ...]) -> FieldVec:
    """Lagrange coefficients at 0 for these servers' points (public, reused)."""
    out = np.array([lagrange_coeffs([point(j) for j in servers], 0)], np.uint64)
    out.setflags(write=False)
    return out


def is_codeword(servers: Sequence[int], shares: FieldVec, degree: int) -> bool:
    """Detection: do the shares lie on a polynomial of degree ≤ D?"""
    return not bool(syndromes(servers, shares, degree).any())


def _solve(rows: list[list[int]], rhs: list[int], n_vars: int) -> list[int] | None:
    """One solution of a linear system mod p (free variables 0), None if inconsistent."""
    aug = [[v % P for v in row] + [b % P] for row, b in zip(rows, rhs, strict=True)]
    pivots: list[int] = []
    r = 0
    for c in range(n_vars):
        piv = next((i for i in range(r, len(aug)) if aug[i][c]), None)
        if piv is None:
            continue
        aug[r], aug[piv] = aug[piv], aug[r]
        scale = inv(aug[r][c])
        aug[r] = [v * scale % P for v in aug[r]]
        for i in range(len(aug)):
            if i != r and aug[i][c]:
                f = aug[i][c]
                aug[i] = [(a - f * b) % P for a, b in zip(aug[i], aug[r], strict=True)]
        pivots.append(c)
        r += 1
    if any(all(v == 0 for v in row[:-1]) and row[-1] for row in aug):
        return None
    sol = [0] * n_vars
    for i, c in enumerate(pivots):
        sol[c] = aug[i][-1]
    return sol


def _poly_divmod(num: list[int], den: list[int]) -> tuple[list[int], list[int]]:
    """Quotient and remainder of polynomials (coefficients low → high) mod p."""
    num = num[:]
    q = [0] * max(1, len(num) - len(den) + 1)
    lead = inv(den[-1])
    for k in range(len(num) - len(den), -1, -1):
        f = num[k + len(den) - 1] * lead % P
        q[k] = f
        for i, dv in enumerate(den):
            num[k + i] = (num[k + i] - f * dv) % P
    return q, num[: len(den) - 1]


def berlekamp_welch(xs: Sequence[int], ys: Sequence[int], degree: int, errors: int) -> list[int]:
    """The positions (indices into xs) of wrong values, assuming at most ``errors`` of them.

    Solves Q(x_i) = y_i·E(x_i) with E monic of degree e and deg Q ≤ e + D [Welch–Berlekamp 1986].
    Raises ReconstructionError when no polynomial of degree ≤ D fits all but ``errors`` values.
    """
    e, n_q = errors, errors + degree + 1
    rows = [[pow(x, k, P) for k in range(n_q)] + [-y * pow(x, k, P) for k in range(e)]
            for x, y in zip(xs, ys, strict=True)]
    rhs = [y * pow(x, e, P) for x, y in zip(xs, ys, strict=True)]
    sol = _solve(rows, rhs, n_q + e)
    if sol is None:
        raise ReconstructionError(f"more than {errors} errors among {len(xs)} shares")
    quotient, rem = _poly_divmod(sol[:n_q], sol[n_q:] + [1])
    if any(rem) or len(quotient) > degree + 1 and any(quotient[degree + 1 :]):
        raise ReconstructionError(f"more than {errors} errors among {len(xs)} shares")
    bad = [i for i, (x, y) in enumerate(zip(xs, ys, strict=True))
           if sum(c * pow(x, k, P) for k, c in enumerate(quotient)) % P != y % P]
    if len(bad) > errors:
        raise ReconstructionError(f"more than {errors} errors among {len(xs)} shares")
    return bad


def decode(servers: Sequence[int], shares: FieldVec, degree: int, coin: Prg) -> Opened:
    """Open a degree-D sharing held by ``servers`` (rows of ``shares``), correcting if needed.

    Raises ReconstructionError when there are fewer than D + 1 shares, or errors are detected
    and cannot be corrected (more than ⌊(n − D − 1)/2⌋ of them).
    """
    servers = list(servers)
    n = len(servers)
    shares = shares.reshape(n, -1)
    if n < degree + 1:
        raise ReconstructionError(f"{n} shares cannot open a degree-{degree} sharing")
    ys: list[int] | None = None
    if shares.shape[1] > n:  # long openings: detect on a private random combination
        beta = coin.field_elements(shares.shape[1])
        ys = [dot(shares[i], beta) for i in range(n)]
        column = np.array(ys, np.uint64).reshape(n, 1)
        if is_codeword(servers, column, degree):
            return Opened(_interpolate(servers, shares, degree), ())
    elif is_codeword(servers, shares, degree):
        return Opened(_interpolate(servers, shares, degree), ())
    max_err = (n - degree - 1) // 2
    if max_err == 0:
        raise ReconstructionError(
            f"errors detected among {n} shares of degree {degree}, none correctable"
        )
    if ys is None:
        beta = coin.field_elements(shares.shape[1])
        ys = [dot(shares[i], beta) for i in range(n)]
    bad_idx = berlekamp_welch([point(j) for j in servers], ys, degree, max_err)
    good = [i for i in range(n) if i not in bad_idx]
    good_servers = [servers[i] for i in good]
    if not bad_idx or not is_codeword(good_servers, shares[good], degree):
        raise ReconstructionError(f"errors among {n} shares of degree {degree} not correctable")
    return Opened(_interpolate(good_servers, shares[good], degree),
                  tuple(servers[i] for i in bad_idx))


def _interpolate(servers: Sequence[int], shares: FieldVec, degree: int) -> FieldVec:
    lam = _interpolation_row(tuple(servers[: degree + 1]))
    out: FieldVec = combine_matrix(lam, shares[: degree + 1])[0]
    return out
