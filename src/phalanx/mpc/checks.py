"""The servers' checks: fused per-client passes and range-proof identities (protocol.md §3.2).

Everything that touches the d coordinates of a client's share vector is ONE numba pass, over a
batch of clients (``norm_pass_batch``; ``norm_pass`` for one), reading 61-bit packed shares in
place: it accumulates Σ x_j² (degree 2t) and ⟨x, ĝ_0⟩ with a small public ĝ_0 as exact 32-bit
limb sums, the (optionally weighted) running aggregate, and the projection rows with the
four-Russians trick: the k sign rows are taken in groups of 8; each coordinate is added into the
bucket of its 8-bit sign pattern in every group, and afterwards the subset sums of the 2^8
buckets give the 8 rows.
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
from phalanx.mpc.messages import Packed61, ShareVector, as_field
from phalanx.mpc.stream import CHUNK, StoredVector, chunk_of, is_stream

INV2 = (P + 1) // 2
"""½ mod p."""

_P = np.uint64(P)


@nb.njit(cache=True, nogil=True)
def _fold(a: np.uint64) -> np.uint64:
    return (a & _P) + (a >> np.uint64(61))


_M32 = np.uint64(0xFFFFFFFF)
_BLOCK = 1024
"""Coordinates per block of the fused pass: one block of unpacked values stays in L1."""


@nb.njit(inline="always", cache=True)
def read61(words: FieldVec, j: int) -> np.uint64:
    """Element j of a 61-bit packed vector (``messages.pack61``'s layout; needs the spare
    word). Branch-free: the high part is shifted in two steps so no shift is by 64."""
    pos = np.uint64(61) * np.uint64(j)
    w = pos >> np.uint64(6)
    off = pos & np.uint64(63)
    hi = (words[w + np.uint64(1)] << np.uint64(1)) << (np.uint64(63) - off)
    out: np.uint64 = ((words[w] >> off) | hi) & _P
    return out


@nb.njit(cache=True, nogil=True)
def _block_sums(v: FieldVec, g: NDArray[np.integer], acc: FieldVec, weight: np.uint64,
                use_g: bool, use_acc: bool, sums: FieldVec) -> None:
    """The vectorizable part of the pass over one block (slices, so no index wrap-around
    checks stop LLVM from vectorizing): 32-bit limb sums of Σ v², Σ v and ⟨v, g⟩ with no
    modular reduction in the loop, and acc += weight·v mod p (canonical)."""
    s0 = np.uint64(0)
    s1 = np.uint64(0)
    s2 = np.uint64(0)
    s3 = np.uint64(0)
    t0 = np.uint64(0)
    t1 = np.uint64(0)
    g0 = np.int64(0)
    g1 = np.int64(0)
    g2 = np.int64(0)
    w_lo = weight & _M32
    w_hi = weight >> np.uint64(32)
    m29 = np.uint64((1 << 29) - 1)
    for i in range(v.shape[0]):
        x = v[i]
        lo = x & _M32
        hi = x >> np.uint64(32)
        ll = lo * lo
        lh = lo * hi
        hh = hi * hi
        s0 += ll & _M32
        s1 += (ll >> np.uint64(32)) + ((lh & _M32) << np.uint64(1))
        s2 += ((lh >> np.uint64(32)) << np.uint64(1)) + (hh & _M32)
        s3 += hh >> np.uint64(32)
        t0 += lo
        t1 += hi
        if use_g:
            gi = np.int64(g[i])
            pl = np.int64(lo) * gi
            ph = np.int64(hi) * gi
            g0 += pl & np.int64(0xFFFFFFFF)
            g1 += (pl >> np.int64(32)) + (ph & np.int64(0xFFFFFFFF))
            g2 += ph >> np.int64(32)
        if use_acc:
            plo = lo * w_lo
            pmid = lo * w_hi + hi * w_lo
            phi = hi * w_hi
            r = ((plo & _P) + (plo >> np.uint64(61)) + (phi << np.uint64(3))
                 + (pmid >> np.uint64(29)) + ((pmid & m29) << np.uint64(32)))
            r = (r & _P) + (r >> np.uint64(61)) + acc[i]
            r = (r & _P) + (r >> np.uint64(61))
            acc[i] = r - _P if r >= _P else r
    sums[0] += s0
    sums[1] += s1
    sums[2] += s2
    sums[3] += s3
    sums[4] += t0
    sums[5] += t1
    sums[6] += np.uint64(g0)
    sums[7] += np.uint64(g1)
    sums[8] += np.uint64(g2)


@nb.njit(inline="always", cache=True)
def _bucket_add(buckets: FieldVec, k: np.uint64, val: np.uint64) -> None:
    b = buckets[k] + val
    buckets[k] = (b & _P) + (b >> np.uint64(61))  # folded, < 2^61 + 2


@nb.njit(inline="always", cache=True)
def _scatter(v: FieldVec, pat: NDArray[np.uint8], buckets: FieldVec, groups: int) -> None:
    """Add each value into its pattern's bucket in every group (≤ 8 groups, unrolled: a loop
    over a run-time group count costs 50% more; indices are unsigned, so no wrap-around
    checks)."""
    for i in range(v.shape[0]):
        val = v[i]
        _bucket_add(buckets, np.uint64(pat[i, 0]), val)
        if groups > 1:
            _bucket_add(buckets, np.uint64(256) + np.uint64(pat[i, 1]), val)
        if groups > 2:
            _bucket_add(buckets, np.uint64(512) + np.uint64(pat[i, 2]), val)
        if groups > 3:
            _bucket_add(buckets, np.uint64(768) + np.uint64(pat[i, 3]), val)
        if groups > 4:
            _bucket_add(buckets, np.uint64(1024) + np.uint64(pat[i, 4]), val)
        if groups > 5:
            _bucket_add(buckets, np.uint64(1280) + np.uint64(pat[i, 5]), val)
        if groups > 6:
            _bucket_add(buckets, np.uint64(1536) + np.uint64(pat[i, 6]), val)
        if groups > 7:
            _bucket_add(buckets, np.uint64(1792) + np.uint64(pat[i, 7]), val)


@nb.njit(cache=True, nogil=True)
def _norm_pass(
    words: tuple[FieldVec, ...],
    xs: tuple[FieldVec, ...],
    n: int,
    patterns: NDArray[np.uint8],
    g0: NDArray[np.integer],
    weights: FieldVec,
    acc: FieldVec,
    buckets: FieldVec,
    sums: FieldVec,
) -> None:
    """The fused pass over a batch of B clients' share vectors, block by block: unpack (client
    b from ``words[b]`` when ``xs[b]`` is empty), the vectorized limb sums and accumulation
    (acc += Σ_b weights[b]·x_b), then the bucket scatter of the projection rows (four-Russians:
    one add per group of 8 rows). One pass reads acc, g0 and the patterns once per batch, not
    once per client: B = 4 cut the time per client by a third here (docs/performance.md)."""
    n_clients = len(words)
    groups = patterns.shape[1]
    use_g = g0.shape[0] == n
    use_acc = acc.shape[0] == n
    tmp = np.empty((n_clients, _BLOCK), np.uint64)
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        for b in range(n_clients):
            if xs[b].shape[0] == 0:
                w = words[b]
                for i in range(m):
                    tmp[b, i] = read61(w, start + i)
            else:
                tmp[b, :m] = xs[b][start:start + m]
        g = g0[start:start + m] if use_g else g0[:0]
        a = acc[start:start + m] if use_acc else acc[:0]
        pat = patterns[start:start + m]
        for b in range(n_clients):
            v = tmp[b, :m]
            _block_sums(v, g, a, weights[b], use_g, use_acc, sums[b])
            _scatter(v, pat, buckets[b], groups)


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


def _read_only(a: FieldVec) -> FieldVec:
    view = a.view()
    view.flags.writeable = False
    return view


def _signed(u: int) -> int:
    return u - (1 << 64) if u >= 1 << 63 else u


def norm_pass(
    x: FieldVec | Packed61,
    patterns: NDArray[np.uint8],
    g0: NDArray[np.integer] | None,
    acc: FieldVec | None,
    *,
    weight: int | None = None,
    subtract: bool = False,
) -> tuple[int, int, list[int]]:
    """One pass over x: (Σ x_j², ⟨x, g0⟩, projection rows R_l); optionally acc ±= (weight·)x.

    ``x`` is a field vector or a :class:`Packed61` read in place. ``g0`` is a public vector of
    small signed integers (|g_j| < 2^31). The sums are exact: 32-bit limb sums in 64-bit
    accumulators (exact for d < 2^28), reduced mod p once at the end.
    """
    return norm_pass_batch([x], patterns, g0, acc, weights=[weight], subtract=subtract)[0]


def norm_pass_batch(
    xs: Sequence[ShareVector],
    patterns: NDArray[np.uint8],
    g0: NDArray[np.integer] | None,
    acc: FieldVec | None,
    *,
    weights: Sequence[int | None],
    subtract: bool = False,
) -> list[tuple[int, int, list[int]]]:
    """:func:`norm_pass` for a batch of clients in one pass; acc ±= Σ_b (weights[b]·)x_b.
    Vectors given as streams (:mod:`phalanx.mpc.stream`: still in their sealed uploads, or
    computed from a seed or a masked blob) are read chunk by chunk, every client's chunk right
    before the pass over it (:class:`BatchPass`)."""
    n = xs[0].shape[0] if xs else 0
    if any(x.shape[0] != n for x in xs):
        raise ConfigError(f"vectors of a batch must have one length, got "
                          f"{[x.shape[0] for x in xs]}")
    batch = BatchPass(len(xs), n, patterns, g0, acc, weights=weights, subtract=subtract)
    vecs = [as_field(x) if isinstance(x, StoredVector) else x for x in xs]
    if not any(is_stream(x) for x in vecs):
        batch.add(0, [chunk_of(x, 0, n) for x in vecs])  # no streams: whole vectors at once
        return batch.results()
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        batch.add(lo, [chunk_of(x, lo, hi) for x in vecs])
    return batch.results()


class BatchPass:
    """:func:`norm_pass_batch` fed chunk by chunk (``add``), so a server can run the pass on
    each piece of a client's upload right after decrypting it, while the piece is in cache:
    the sums and buckets carry over between chunks; ``results`` then gives, per client,
    (Σ x_j², ⟨x, g0⟩, projection rows) exactly as one call over the whole vectors would."""

    def __init__(self, k: int, n: int, patterns: NDArray[np.uint8],
                 g0: NDArray[np.integer] | None, acc: FieldVec | None, *,
                 weights: Sequence[int | None], subtract: bool = False) -> None:
        if k < 1 or len(weights) != k:
            raise ConfigError(f"norm_pass_batch needs one weight per vector, got {len(weights)} "
                              f"for {k}")
        if n >= 1 << 28:
            raise ConfigError(f"norm_pass supports d < 2^28, got d={n}")
        if patterns.shape[0] != n:
            raise ConfigError(f"patterns have {patterns.shape[0]} rows for d={n}")
        g_arr: NDArray[np.integer] = np.zeros(0, np.int32)
        if g0 is not None and g0.dtype == np.int32 and g0.flags.c_contiguous:
            g_arr = g0  # the circuits' own int32 copy: no check, no conversion per client
        elif g0 is not None:
            if g0.size and int(np.abs(g0).max()) >= 1 << 31:
                raise ConfigError("norm_pass needs |g0| < 2^31")
            g_arr = np.ascontiguousarray(g0, dtype=np.int32)
        self.groups = patterns.shape[1]
        if not 1 <= self.groups <= 8:
            raise ConfigError(f"patterns have {self.groups} groups of 8 rows, must be 1..8")
        if acc is not None and acc.shape[0] != n:
            raise ConfigError(f"accumulator has {acc.shape[0]} entries for d={n}")
        self.k, self.n, self.patterns, self.g0 = k, n, patterns, g_arr
        self.use_g = g_arr.shape[0] == n
        self.acc = acc if acc is not None else np.zeros(0, np.uint64)
        self.buckets = np.zeros((k, self.groups * 256), np.uint64)
        self.sums = np.zeros((k, 9), np.uint64)
        ws = []
        for w in weights:
            w = 0 if acc is None else (1 if w is None else w % P)
            ws.append((P - w) % P if subtract else w)
        self.weights = np.array(ws, np.uint64)
        self.done = 0

    def add(self, lo: int, xs: Sequence[FieldVec | Packed61]) -> None:
        """Coordinates lo … lo + len − 1 of every client's vector (``xs[b]``: plain, or packed
        starting at coordinate lo, so lo must be a multiple of 64 for packed chunks). Chunks
        must come in order and cover 0 … n − 1 exactly."""
        if len(xs) != self.k:
            raise ConfigError(f"a chunk needs one vector per client ({self.k}), got {len(xs)}")
        m = xs[0].shape[0]
        if lo != self.done or lo + m > self.n or any(x.shape[0] != m for x in xs):
            raise ConfigError(f"chunk of {[x.shape[0] for x in xs]} coordinates at {lo}: "
                              f"expected one length at {self.done}, ≤ {self.n - self.done}")
        if lo % 64 and any(isinstance(x, Packed61) for x in xs):
            raise ConfigError(f"a packed chunk must start at a multiple of 64, got lo={lo}")
        # read-only views throughout, so numba sees one array type per tuple (decoded bundles
        # are read-only views of the plaintext; other vectors are writable)
        empty = _read_only(np.zeros(0, np.uint64))
        words = tuple(_read_only(x.words) if isinstance(x, Packed61) else empty for x in xs)
        plain = tuple(empty if isinstance(x, Packed61) else _read_only(np.ascontiguousarray(x))
                      for x in xs)
        hi = lo + m
        g = self.g0[lo:hi] if self.use_g else self.g0[:0]
        acc = self.acc[lo:hi] if self.acc.shape[0] else self.acc
        _norm_pass(words, plain, m, self.patterns[lo:hi], g, self.weights, acc, self.buckets,
                   self.sums)
        self.done = hi

    def results(self) -> list[tuple[int, int, list[int]]]:
        """Per client (Σ x_j², ⟨x, g0⟩, projection rows), once every chunk was added."""
        if self.done != self.n:
            raise ConfigError(f"the pass saw {self.done} of {self.n} coordinates")
        buckets = self.buckets % _P  # the scatter keeps them folded below 2^61 + 2
        out = []
        for b in range(self.k):
            s = [int(v) for v in self.sums[b]]
            sq = (s[0] + (s[1] << 32) + (s[2] << 64) + (s[3] << 96)) % P
            total = (s[4] + (s[5] << 32)) % P
            gd = (_signed(s[6]) + (_signed(s[7]) << 32) + (_signed(s[8]) << 64)) % P
            rows = _rows_from_buckets(buckets[b], self.groups, np.uint64(total),
                                      np.uint64(INV2))
            out.append((sq, gd, [int(v) for v in rows]))
        return out


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
    that fail the decomposition identity, never an exception. One numpy shift per value, not
    a Python loop per bit (widths beyond 63 bits take the exact Python path).
    """
    if width > 63:
        wide = [(v % (1 << width)) >> k & 1 for v in values for k in range(width)]
        return np.array(wide, np.uint64)
    low = np.array([v % (1 << width) for v in values], np.uint64)
    shifts = np.arange(width, dtype=np.uint64)
    out: FieldVec = ((low[:, None] >> shifts[None, :]) & np.uint64(1)).reshape(-1)
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
