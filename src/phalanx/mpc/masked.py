"""Masked replicated sharing: Shamir shares a client uploads once, plus short keys (§2, deviation).

Seed compression still uploads m − t explicit share vectors, and each is uniform to its holder,
so it costs ≥ (m − t)·61 bits per coordinate. This variant meets the issue's upload bound
instead: the client draws one PRG key k_A for every set A of m − t servers (as for PRZS) and gives
k_A to A's members; with f_A the degree-t polynomial with f_A(0) = 1 that vanishes outside A,

    ρ = Σ_A PRG(k_A)   and   F(X) = Σ_A PRG(k_A)·f_A(X)   (degree t, F(0) = ρ).


With integer weights instead of f_A (cheaper: no field multiplications), g_A(X) = Π_{b ∉ A}(α_b − X)
= f_A(X)·Π_{b ∉ A} α_b, the client uses ρ = Σ_A g_A(0)·PRG(k_A) and F(X) = Σ_A g_A(X)·PRG(k_A):
still degree t with F(0) = ρ, and |g_A(α_j)| < m^t, so each term is a two-product multiplication.
The client publishes the masked vector c = z − ρ once (a content-addressed blob whose hash it
commits to); server j's Shamir share of z is c + F(α_j) = c + Σ_{A ∋ j} f_A(α_j)·PRG(k_A), computed
from public c and the keys it holds. Any t servers miss the key of the set formed by the others,
so ρ — and hence c — is pseudo-random to them (Cramer–Damgård–Ishai 2005). A client that hands
members of one set different keys makes an inconsistent sharing, caught by the consistency
check. Upload: 61/32 ≈ 1.9 × float32 + C(m, t) keys; each server expands C(m − 1, t) vectors,
so the variant pays off for small C(m − 1, t) (4 for (5,1), 28 for (9,2)).
"""

from __future__ import annotations

from collections.abc import Mapping

import numba as nb
import numpy as np

from phalanx.errors import ConfigError
from phalanx.mpc.field import FieldVec, P, addmod, submod
from phalanx.mpc.prg import CHUNK_WORDS, ZEROS, Prg, derive
from phalanx.mpc.przs import KeySet, key_sets
from phalanx.mpc.shamir import point

_P = np.uint64(P)


@nb.njit(cache=True, nogil=True)
def add_small_multiple(out: FieldVec, v: FieldVec, coef: int) -> None:
    """out ← out + coef·v mod p for a small signed integer coef (|coef| < 2^31)."""
    c = np.uint64(abs(coef))
    m32 = np.uint64(0xFFFFFFFF)
    m29 = np.uint64((1 << 29) - 1)
    for i in range(out.shape[0]):
        lo = (v[i] & m32) * c
        h = (v[i] >> np.uint64(32)) * c
        r = (lo & _P) + (lo >> np.uint64(61)) + (h >> np.uint64(29)) + ((h & m29) << np.uint64(32))
        r = (r & _P) + (r >> np.uint64(61))
        if r >= _P:
            r -= _P
        out[i] = addmod(out[i], r) if coef >= 0 else submod(out[i], r)


@nb.njit(cache=True, nogil=True)
def add_masked_words(out: FieldVec, words: FieldVec, coef: int) -> int:
    """out ← out + coef·(w & p) for raw key-stream words w: ``add_small_multiple`` fused with
    the PRG's 61-bit masking (one pass instead of two); returns how many masked words equal p
    (the PRG rejects those: the caller must then redo the sum from exact expansions)."""
    c = np.uint64(abs(coef))
    m32 = np.uint64(0xFFFFFFFF)
    m29 = np.uint64((1 << 29) - 1)
    n_bad = 0
    for i in range(out.shape[0]):
        v = words[i] & _P
        n_bad += v == _P
        lo = (v & m32) * c
        h = (v >> np.uint64(32)) * c
        r = (lo & _P) + (lo >> np.uint64(61)) + (h >> np.uint64(29)) + ((h & m29) << np.uint64(32))
        r = (r & _P) + (r >> np.uint64(61))
        if r >= _P:
            r -= _P
        out[i] = addmod(out[i], r) if coef >= 0 else submod(out[i], r)
    return n_bad


def weight(key_set: KeySet, m: int, x: int) -> int:
    """g_A(x) = Π_{b ∉ A} (α_b − x), a small signed integer for x ∈ {0, α_1..α_m}."""
    val = 1
    for b in range(m):
        if b not in key_set:
            val *= point(b) - x
    return val


def _weighted_sum(start: FieldVec, keys: Mapping[KeySet, bytes], weights: Mapping[KeySet, int],
                  label: str) -> FieldVec:
    """start + Σ_A weights[A]·PRG(k_A), chunk by chunk (one reused key-stream buffer; 8 MB
    expansions per key, then a pass over each, cost 49 ms per client for (5, 1) here). A
    key-stream word equal to p (probability 2^-61) is replaced by words after the n-th, which a
    chunk cannot know: then the whole expansion is redone exactly."""
    n = start.shape[0]
    out = start.copy()
    prgs = [(Prg(derive(k, "mask", label)), weights[a]) for a, k in keys.items()]
    buf = np.empty(min(n, CHUNK_WORDS) + 2, np.uint64)
    for lo in range(0, n, CHUNK_WORDS):
        hi = min(n, lo + CHUNK_WORDS)
        for prg, w in prgs:
            vec = prg.words_into(buf, hi - lo, ZEROS)
            if add_masked_words(out[lo:hi], vec, w):
                return _weighted_sum_whole(start, keys, weights, label)
    return out


def _weighted_sum_whole(start: FieldVec, keys: Mapping[KeySet, bytes],
                        weights: Mapping[KeySet, int], label: str) -> FieldVec:
    """:func:`_weighted_sum` by whole expansions (the PRG's exact rejection sampling)."""
    out = start.copy()
    buf = np.empty(out.shape[0] + 2, np.uint64)
    for a, k in keys.items():
        vec = Prg(derive(k, "mask", label)).field_elements(out.shape[0], out=buf)
        add_small_multiple(out, vec, weights[a])
    return out


def share_masked(secret: FieldVec, *, m: int, t: int, keys: Mapping[KeySet, bytes],
                 label: str) -> FieldVec:
    """The public masked vector c = z − Σ_A g_A(0)·PRG(k_A) (one key per set of m − t)."""
    if sorted(keys) != key_sets(m, t):
        raise ConfigError(f"masked sharing needs one key per set of m - t = {m - t} servers")
    weights = {a: -weight(a, m, 0) for a in keys}
    return _weighted_sum(secret, keys, weights, label)


def masked_share(masked: FieldVec, keys: Mapping[KeySet, bytes], server: int, *, m: int,
                 label: str) -> FieldVec:
    """Server ``server``'s Shamir share c + Σ_{A ∋ j} g_A(α_j)·PRG(k_A)."""
    mine = {a: k for a, k in keys.items() if server in a}
    weights = {a: weight(a, m, point(server)) for a in mine}
    return _weighted_sum(masked, mine, weights, label)
