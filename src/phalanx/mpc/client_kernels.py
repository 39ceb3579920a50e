"""Fused numba kernels for the client's per-coordinate work (protocol.md §1–3.2).

A client touches its d coordinates a few times: stochastic fixed-point encoding, the witnesses
Σ x_j² and ⟨x, g⟩, the projection rows of the post-commitment coin, and seeded Shamir sharing
with 61-bit packing of the explicit shares. Each is one pass here, with results bit-identical to
the generic mod-p definitions (:mod:`phalanx.mpc.field`, ``checks.norm_pass``, ``messages.pack61``).

An honest encoding holds small signed integers (|x_j| < 2T ≪ 2^31, §3.2), so the witness kernels
work on the centered representatives in exact integer arithmetic and fold into GF(p) only when an
accumulator nears 2^63; a coordinate too large for that (a saturated or wrap-around input) takes
the full mulmod, so the results stay exact mod p for every input.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

from phalanx.mpc.field import FieldVec, P, addmod, mulmod, submod
from phalanx.mpc.prg import CHUNK_WORDS

CHUNK = CHUNK_WORDS
"""Coordinates per streamed chunk (a multiple of 64, so packed chunks start on a word)."""

_P = np.uint64(P)
_HALF = np.uint64(P // 2)
_SMALL = np.uint64(1 << 31)  # |c| below this: c² < 2^62 and |c·g| < 2^62 for |g| < 2^31
_TOP = np.uint64(1 << 63)  # fold an accumulator once it reaches this
_S61 = np.uint64(61)
_S11 = np.uint64(11)
_BLOCK = 256
_BLOCK_SMALL = np.uint64(1 << 27)  # all |factors| below this: a block's 256 terms sum < 2^62


@nb.njit(inline="always", cache=True)
def _fold(a: np.uint64) -> np.uint64:
    """a mod p up to one extra p (a < 2^64 → result < 2^61 + 8)."""
    return (a & _P) + (a >> _S61)


@nb.njit(inline="always", cache=True)
def _magnitude(v: np.uint64) -> np.uint64:
    """|centered(v)|: v for v ≤ (p−1)/2, else p − v."""
    return v if v <= _HALF else _P - v


# -- fixed-point encoding ------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def all_finite(values: NDArray[np.floating]) -> bool:
    """True when no value is NaN or ±inf."""
    for j in range(values.shape[0]):
        if not np.isfinite(values[j]):
            return False
    return True


@nb.njit(cache=True, nogil=True)
def encode_chunk(values: NDArray[np.floating], words: FieldVec, scale: float, lattice: int,
                 limit: float, saturate: bool, out: FieldVec,
                 sq: np.uint64) -> tuple[int, np.uint64]:
    """Encode one chunk (see ``fixed.encode_fixed``), reading float32 or float64 directly.

    Stochastic rounding uses ``words[j] >> 11`` as a 53-bit uniform when ``words`` covers the
    chunk, else rounds to nearest. Returns (values at the limit, running Σ x_j² mod p, folded
    but not fully reduced). Values at the limit are clamped (their outputs are meaningless
    unless ``saturate``: the caller raises). Branch-free blocks of 256 let the loop vectorize;
    a block whose |x_j| reach 2^27 is summed again exactly.
    """
    n_big = 0
    stochastic = words.shape[0] >= values.shape[0]
    inner = limit * (1.0 - 2.0**-52)
    lat = np.int64(lattice)
    acc = np.uint64(sq)
    n = values.shape[0]
    for b0 in range(0, n, _BLOCK):
        b1 = min(n, b0 + _BLOCK)
        orr = np.uint64(0)
        part = np.uint64(0)
        for j in range(b0, b1):
            v = float(values[j]) * scale
            big = not (abs(v) < limit)
            n_big += big
            v = min(max(v, -inner), inner) if big else v
            if stochastic:
                low = np.floor(v)
                u = np.float64(words[j] >> _S11) * (1.0 / 9007199254740992.0)
                r = np.int64(low) + (np.int64(1) if u < v - low else np.int64(0))
            else:
                r = np.int64(np.rint(v))
            r *= lat
            mag = np.uint64(r) if r >= 0 else np.uint64(-r)
            out[j] = mag if r >= 0 else _P - mag
            orr |= mag
            part += mag * mag
        if orr >= _BLOCK_SMALL:  # some |x_j| ≥ 2^27: the wrapping sum is not exact
            part = _sum_sq_exact(out, b0, b1)
        acc += part
        if acc >= _TOP:
            acc = _fold(acc)
    return n_big, acc


# -- witnesses -----------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def _sum_sq_exact(x: FieldVec, lo: int, hi: int) -> np.uint64:
    """Σ_{lo ≤ j < hi} x_j² mod p (< 2^61 + 8), exact for any field elements."""
    acc = np.uint64(0)
    for j in range(lo, hi):
        v = x[j]
        mag = _magnitude(v)
        acc += mag * mag if mag < _SMALL else mulmod(v, v)
        if acc >= _TOP:
            acc = _fold(acc)
    return _fold(acc)


@nb.njit(cache=True, nogil=True)
def _sum_sq(x: FieldVec) -> np.uint64:
    n = x.shape[0]
    acc = np.uint64(0)
    for b0 in range(0, n, _BLOCK):
        b1 = min(n, b0 + _BLOCK)
        orr = np.uint64(0)
        part = np.uint64(0)
        for j in range(b0, b1):
            mag = _magnitude(x[j])
            orr |= mag
            part += mag * mag
        if orr >= _BLOCK_SMALL:
            part = _sum_sq_exact(x, b0, b1)
        acc += part
        if acc >= _TOP:
            acc = _fold(acc)
    return acc % _P


def sum_sq(x: FieldVec) -> int:
    """Σ x_j² mod p (equals ``field.dot(x, x)``), exact integers on the centered values."""
    return int(_sum_sq(np.ascontiguousarray(x, dtype=np.uint64)))


@nb.njit(cache=True, nogil=True)
def _dot_small_exact(x: FieldVec, g: NDArray[np.int64], g_fe: FieldVec, lo: int,
                     hi: int) -> np.uint64:
    """Σ_{lo ≤ j < hi} x_j g_j mod p, exact for any field elements and int64 g."""
    pos = np.uint64(0)
    neg = np.uint64(0)
    for j in range(lo, hi):
        v = x[j]
        gj = g[j]
        mag = _magnitude(v)
        gmag = np.uint64(gj) if gj >= 0 else np.uint64(-gj)
        if mag < _SMALL and gmag < _SMALL:
            prod = mag * gmag
            if (v > _HALF) != (gj < 0):
                neg += prod
            else:
                pos += prod
        else:
            pos += mulmod(v, g_fe[j])
        if pos >= _TOP:
            pos = _fold(pos)
        if neg >= _TOP:
            neg = _fold(neg)
    return submod(pos % _P, neg % _P)


@nb.njit(cache=True, nogil=True)
def _dot_small(x: FieldVec, g: NDArray[np.int64], g_fe: FieldVec) -> np.uint64:
    n = x.shape[0]
    pos = np.uint64(0)
    neg = np.uint64(0)
    p_int = np.int64(P)
    for b0 in range(0, n, _BLOCK):
        b1 = min(n, b0 + _BLOCK)
        orr = np.uint64(0)
        part = np.int64(0)
        for j in range(b0, b1):
            v = x[j]
            gj = g[j]
            c = np.int64(v) if v <= _HALF else np.int64(v) - p_int
            orr |= _magnitude(v) | np.uint64(gj if gj >= 0 else -gj)
            part += c * gj
        if orr >= _BLOCK_SMALL:  # a factor reaches 2^27: the wrapping sum is not exact
            pos += _dot_small_exact(x, g, g_fe, b0, b1)
        elif part >= 0:
            pos += np.uint64(part)
        else:
            neg += np.uint64(-part)
        if pos >= _TOP:
            pos = _fold(pos)
        if neg >= _TOP:
            neg = _fold(neg)
    return submod(pos % _P, neg % _P)


def dot_small(x: FieldVec, g: NDArray[np.int64], g_fe: FieldVec) -> int:
    """⟨x, g⟩ mod p for a public integer vector g given also as field elements ``g_fe``
    (equals ``field.dot(x, g_fe)``); exact integer products where both sides are below 2^31."""
    return int(_dot_small(np.ascontiguousarray(x, dtype=np.uint64),
                          np.ascontiguousarray(g, dtype=np.int64),
                          np.ascontiguousarray(g_fe, dtype=np.uint64)))


@nb.njit(cache=True, nogil=True)
def _row_sums(x: FieldVec, patterns: NDArray[np.uint8], bound: np.uint64,
              out: NDArray[np.int64]) -> tuple[bool, np.int64]:
    """Σ_j c_j and, in ``out``, S_l = Σ_{j: bit l of row pattern set} c_j over the centered
    values c_j (four-Russians buckets as in ``checks.norm_pass``; 1 to 8 groups of 8 rows),
    exact in int64 when every |c_j| < bound; returns (False, 0) when one is not."""
    groups = patterns.shape[1]
    buckets = np.zeros(groups * 256, np.int64)
    total = np.int64(0)
    top = np.uint64(0)
    for j in range(x.shape[0]):
        v = x[j]
        mag = _magnitude(v)
        top = max(top, mag)  # checked after the loop: an early exit slows the loop down 3x
        c = np.int64(v) if v <= _HALF else -np.int64(mag)
        total += c
        # one statement per group (at most 8): the unrolled form runs ~3x faster than a loop
        buckets[np.int64(patterns[j, 0])] += c
        if groups > 1:
            buckets[256 + np.int64(patterns[j, 1])] += c
        if groups > 2:
            buckets[512 + np.int64(patterns[j, 2])] += c
        if groups > 3:
            buckets[768 + np.int64(patterns[j, 3])] += c
        if groups > 4:
            buckets[1024 + np.int64(patterns[j, 4])] += c
        if groups > 5:
            buckets[1280 + np.int64(patterns[j, 5])] += c
        if groups > 6:
            buckets[1536 + np.int64(patterns[j, 6])] += c
        if groups > 7:
            buckets[1792 + np.int64(patterns[j, 7])] += c
    if top >= bound:  # the int64 sums may have wrapped
        return False, np.int64(0)
    for gi in range(groups):
        for bit in range(8):
            s = np.int64(0)
            for pat in range(256):
                if (pat >> bit) & 1:
                    s += buckets[gi * 256 + pat]
            out[gi * 8 + bit] = s
    return True, total


def projection_rows(x: FieldVec, patterns: NDArray[np.uint8]) -> list[int] | None:
    """The projection rows R_l = ½·Σ_j x_j − Σ_{j: s_lj = −½} x_j mod p (protocol.md §3.2), as
    ``checks.norm_pass`` returns them, or None when some |x_j| is too large for exact int64 sums
    (then the caller takes the mod-p pass)."""
    d = x.shape[0]
    if not 1 <= patterns.shape[1] <= 8 or patterns.shape[0] != d:
        return None
    bound = np.uint64(min(1 << 61, (1 << 62) // max(1, d)))  # Σ|c_j| < 2^62: no int64 overflow
    sums = np.empty(8 * patterns.shape[1], np.int64)
    ok, total = _row_sums(np.ascontiguousarray(x, dtype=np.uint64), patterns, bound, sums)
    if not ok:
        return None
    half = int(total) * ((P + 1) // 2)
    return [(half - int(s)) % P for s in sums]


# -- seeded Shamir sharing -----------------------------------------------------------------------
@nb.njit(inline="always", cache=True)
def _emit(out: FieldVec, s: np.uint64, cur: np.uint64, nbits: np.uint64,
          w: int) -> tuple[np.uint64, np.uint64, int]:
    """Append a 61-bit value to a packed stream (the layout of ``messages.pack61``): ``cur``
    holds the ``nbits`` pending bits of word ``w``; a completed word is stored."""
    if nbits >= np.uint64(3):
        out[w] = cur | (s << nbits)
        return s >> (np.uint64(64) - nbits), nbits - np.uint64(3), w + 1
    return cur | (s << nbits), nbits + _S61, w


@nb.njit(cache=True, nogil=True)
def _step_packed(prev: FieldVec, slope: FieldVec, two: bool, dst: FieldVec, start: int) -> None:
    """prev ← prev + (1 or 2)·slope, appended 61-bit packed to ``dst`` from word ``start``."""
    cur = np.uint64(0)
    nbits = np.uint64(0)
    w = start
    for j in range(prev.shape[0]):
        a = slope[j]
        s = addmod(prev[j], addmod(a, a) if two else a)
        prev[j] = s
        cur, nbits, w = _emit(dst, s, cur, nbits, w)
    if nbits > np.uint64(0):
        dst[w] = cur


@nb.njit(cache=True, nogil=True)
def _lagrange_packed(z: FieldVec, rows: FieldVec, coef: FieldVec, dst: FieldVec,
                     start: int) -> None:
    """Σ_r coef[r]·row_r (row_0 = z, the others masked to 61 bits), packed into ``dst``."""
    cur = np.uint64(0)
    nbits = np.uint64(0)
    w = start
    for j in range(z.shape[0]):
        s = mulmod(coef[0], z[j])
        for r in range(rows.shape[0]):
            s = addmod(s, mulmod(coef[r + 1], rows[r, j] & _P))
        cur, nbits, w = _emit(dst, s, cur, nbits, w)
    if nbits > np.uint64(0):
        dst[w] = cur


@nb.njit(cache=True, nogil=True)
def share_chunk(z: FieldVec, rows: FieldVec, coef: FieldVec, alphas: FieldVec, cinv: np.uint64,
                out: FieldVec, start: int, slope: FieldVec, prev: FieldVec) -> int:
    """The explicit shares of one chunk of a seeded sharing (protocol.md §2), packed at 61 bits
    (the layout of ``messages.pack61``) into ``out[k]`` from word ``start`` on (a chunk of a
    multiple of 64 values starts on a word).

    ``rows[r, :len(z)]`` are the raw PRG words of the t seeded shares, masked to 61 bits here;
    the count of words equal to p (which the PRG rejects) is returned, so that the caller can
    redo the item exactly. Row k is the share of the explicit server at point ``alphas[k]``
    (increasing). For t = 1 the shares lie on the line through (0, z) and (α_s, r): the slope
    a = (r − z)·α_s⁻¹ (``cinv``) costs one mulmod per coordinate and each next point adds a or
    2a (the points are consecutive but for α_s); for larger t, each share is the Lagrange
    combination Σ_r coef[k, r]·row_r with row_0 = z. ``slope`` and ``prev`` are scratch.
    """
    n = z.shape[0]
    t = rows.shape[0]
    n_bad = 0
    for r in range(t):
        for j in range(n):
            n_bad += (rows[r, j] & _P) == _P
    if t != 1:
        for k in range(out.shape[0]):
            _lagrange_packed(z, rows[:, :n], coef[k], out[k], start)
        return n_bad
    for j in range(n):
        zv = z[j]
        slope[j] = mulmod(submod(rows[0, j] & _P, zv), cinv)
        prev[j] = zv
    last = np.uint64(0)
    for k in range(out.shape[0]):
        _step_packed(prev[:n], slope[:n], alphas[k] - last == np.uint64(2), out[k], start)
        last = alphas[k]
    return n_bad
