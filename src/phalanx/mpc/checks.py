"""The servers' checks: fused per-client passes and range-proof identities (protocol.md §3.2).

Everything that touches the d coordinates of a client's share vector is ONE numba pass:
``norm_pass`` accumulates Σ x_j² (degree 2t), ⟨x, ĝ_0⟩ with a small public ĝ_0, the
(optionally weighted) running aggregate, and the projection rows with the four-Russians trick:
the k sign rows are taken in groups of 8; each coordinate is added into the bucket of its 8-bit
sign pattern in every group, and afterwards the subset sums of the 2^8 buckets give the 8 rows.
``sign_pass`` is the rsa counterpart over the bit vectors a, b.

Projection rows (after ACORN, Bell et al. 2023): row l has coefficients s_lj ∈ {+½, −½} mod p,
so R_l = ½·Σ_j x_j − Σ_{j: s_lj = −½} x_j. If some |x_j| > 2T, each row lies in [−T, T] with
probability ≤ ½ (the two signs of x_j move R_l by exactly x_j). Vectors are encoded on the even
integers so that an honest R_l is an integer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba as nb
import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ConfigError
from phalanx.mpc.field import FieldVec, P, addmod, mulmod, submod

INV2 = (P + 1) // 2
"""½ mod p."""

_P = np.uint64(P)


@nb.njit(cache=True, nogil=True)
def _fold(a: np.uint64) -> np.uint64:
    return (a & _P) + (a >> np.uint64(61))


@nb.njit(inline="always", cache=True)
def _sqr(a: np.uint64) -> np.uint64:
    """a² mod p with three limb products (the cross term is doubled)."""
    a_lo = a & np.uint64(0xFFFFFFFF)
    a_hi = a >> np.uint64(32)
    lo = a_lo * a_lo
    mid = (a_lo * a_hi) << np.uint64(1)
    hi = a_hi * a_hi
    m29 = np.uint64((1 << 29) - 1)
    r = ((lo & _P) + (lo >> np.uint64(61)) + (hi << np.uint64(3)) + (mid >> np.uint64(29))
         + ((mid & m29) << np.uint64(32)))
    return (r & _P) + (r >> np.uint64(61))


@nb.njit(inline="always", cache=True)
def _mul_small(a: np.uint64, g: np.uint64) -> np.uint64:
    """a·g mod p (not fully reduced, < 2^62) for g < 2^31: two limb products."""
    lo = (a & np.uint64(0xFFFFFFFF)) * g
    h = (a >> np.uint64(32)) * g
    return ((lo & _P) + (lo >> np.uint64(61)) + (h >> np.uint64(29))
            + ((h & np.uint64((1 << 29) - 1)) << np.uint64(32)))


@nb.njit(cache=True, nogil=True)
def _norm_pass(
    x: FieldVec,
    patterns: NDArray[np.uint8],
    g0: NDArray[np.int64],
    weight: np.uint64,
    acc: FieldVec,
    mode: int,
    buckets: FieldVec,
) -> tuple[np.uint64, np.uint64, np.uint64]:
    """mode 0: no accumulation; 1: acc += x; 2: acc += weight·x; 3: acc −= x; 4: acc −= weight·x.

    ``g0`` holds small signed integers (|g| < 2^31): the positive and negative parts of ⟨x, g⟩
    are accumulated apart with a two-product multiplication.
    """
    d = x.shape[0]
    groups = patterns.shape[1]
    use_g0 = g0.shape[0] == d
    sq = np.uint64(0)
    gpos = np.uint64(0)
    gneg = np.uint64(0)
    total = np.uint64(0)
    weight = np.uint64(weight)
    for j in range(d):
        v = x[j]
        sq = _fold(sq + _sqr(v))
        if use_g0:
            g = g0[j]
            neg = np.uint64(0) - np.uint64(g < 0)  # all ones for a negative g (branch-free:
            prod = _mul_small(v, np.uint64(abs(g)))  # random signs mispredict half the time)
            gpos = _fold(gpos + (prod & ~neg))
            gneg = _fold(gneg + (prod & neg))
        total = _fold(total + v)
        for gi in range(groups):
            k = gi * 256 + patterns[j, gi]
            buckets[k] = addmod(buckets[k], v)
        if mode == 1:
            acc[j] = addmod(acc[j], v)
        elif mode == 2:
            acc[j] = addmod(acc[j], mulmod(weight, v))
        elif mode == 3:
            acc[j] = submod(acc[j], v)
        elif mode == 4:
            acc[j] = submod(acc[j], mulmod(weight, v))
    return sq % _P, submod(gpos % _P, gneg % _P), total % _P


@nb.njit(cache=True, nogil=True)
def _rows_from_buckets(
    buckets: FieldVec, groups: int, total: np.uint64, inv2: np.uint64
) -> FieldVec:
    """R_l = ½·total − Σ_{patterns with bit l set} bucket, for l < 8·groups."""
    rows = np.empty(groups * 8, np.uint64)
    half = mulmod(np.uint64(total), np.uint64(inv2))
    for g in range(groups):
        for bit in range(8):
            s = np.uint64(0)
            for pat in range(256):
                if (pat >> bit) & 1:
                    s = addmod(s, buckets[g * 256 + pat])
            rows[g * 8 + bit] = submod(half, s)
    return rows


@nb.njit(cache=True, nogil=True)
def _sign_pass(
    a: FieldVec, b: FieldVec, rho: FieldVec, sigma: FieldVec, acc: FieldVec, mode: int
) -> tuple[np.uint64, np.uint64, np.uint64]:
    """Σ ρ_j a_j(a_j + b_j − 1) + σ_j b_j(b_j − 1), Σ ρ_j a_j, Σ σ_j b_j; acc ±= a − b."""
    quad = np.uint64(0)
    lin_a = np.uint64(0)
    lin_b = np.uint64(0)
    one = np.uint64(1)
    for j in range(a.shape[0]):
        ra = mulmod(rho[j], a[j])
        sb = mulmod(sigma[j], b[j])
        lin_a = _fold(lin_a + ra)
        lin_b = _fold(lin_b + sb)
        q1 = mulmod(ra, submod(addmod(a[j], b[j]), one))
        q2 = mulmod(sb, submod(b[j], one))
        quad = _fold(quad + addmod(q1, q2))
        if mode == 1:
            acc[j] = addmod(acc[j], submod(a[j], b[j]))
        elif mode == 3:
            acc[j] = submod(acc[j], submod(a[j], b[j]))
    return quad % _P, lin_a % _P, lin_b % _P


def norm_pass(
    x: FieldVec,
    patterns: NDArray[np.uint8],
    g0: NDArray[np.int64] | None,
    acc: FieldVec | None,
    *,
    weight: int | None = None,
    subtract: bool = False,
) -> tuple[int, int, list[int]]:
    """One pass over x: (Σ x_j², ⟨x, g0⟩, projection rows R_l); optionally acc ±= (weight·)x.

    ``g0`` is a public vector of small signed integers (|g_j| < 2^31), as an int64 array.
    """
    if g0 is not None and g0.size and int(np.abs(g0).max()) >= 1 << 31:
        raise ConfigError("norm_pass needs |g0| < 2^31")
    groups = patterns.shape[1]
    buckets = np.zeros(groups * 256, np.uint64)
    mode = 0 if acc is None else (1 if weight is None else 2) + (2 if subtract else 0)
    acc_arr = acc if acc is not None else np.zeros(0, np.uint64)
    g0_arr = g0 if g0 is not None else np.zeros(0, np.int64)
    w = np.uint64(0 if weight is None else weight % P)
    sq, gd, total = _norm_pass(x, patterns, g0_arr, w, acc_arr, mode, buckets)
    rows = _rows_from_buckets(buckets, groups, np.uint64(total), np.uint64(INV2))
    return int(sq), int(gd), [int(v) for v in rows]


def sign_pass(
    a: FieldVec, b: FieldVec, rho: FieldVec, sigma: FieldVec, acc: FieldVec | None,
    *, subtract: bool = False,
) -> tuple[int, int, int]:
    """One pass over rsa's bit vectors: (quadratic check, Σ ρa, Σ σb); optionally acc ±= a − b."""
    mode = 0 if acc is None else (3 if subtract else 1)
    acc_arr = acc if acc is not None else np.zeros(0, np.uint64)
    quad, lin_a, lin_b = _sign_pass(a, b, rho, sigma, acc_arr, mode)
    return int(quad), int(lin_a), int(lin_b)


def bits_of(values: Sequence[int], width: int) -> FieldVec:
    """The ``width`` low bits of each value (least significant first), as field elements.

    The best-effort client decomposes ``value mod 2^width``: an out-of-range value yields bits
    that fail the decomposition identity, never an exception.
    """
    out = np.empty(len(values) * width, np.uint64)
    for i, v in enumerate(values):
        u = v % (1 << width)
        for k in range(width):
            out[i * width + k] = (u >> k) & 1
    return out


def recompose(bits: Sequence[int], width: int) -> list[int]:
    """Σ_k 2^k b_k per group of ``width`` shares (linear, so it works on shares)."""
    out = []
    for i in range(len(bits) // width):
        out.append(sum(int(bits[i * width + k]) << k for k in range(width)) % P)
    return out


def binary_check(bits: FieldVec, weights: FieldVec) -> int:
    """Σ_i ρ_i·b_i·(b_i − 1): a degree-2 share that is 0 for bits (w.p. 1 − 1/p otherwise)."""
    b = bits.astype(object)
    w = weights.astype(object)
    return int(sum((wi * bi % P) * ((bi - 1) % P) for wi, bi in zip(w, b, strict=True)) % P)
