"""Masked replicated sharing: Shamir shares a client uploads once, plus short keys (§2, deviation).

Seed compression still uploads m − t explicit share vectors, and each is uniform to its holder,
so it costs ≥ (m − t)·61 bits per coordinate. This variant meets the issue's upload bound
instead: the client draws one PRG key k_A for every set A of m − t servers (as for PRZS) and gives
k_A to A's members; with f_A the degree-t polynomial with f_A(0) = 1 that vanishes outside A,

    ρ = Σ_A PRG(k_A)   and   F(X) = Σ_A PRG(k_A)·f_A(X)   (degree t, F(0) = ρ).

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

import numpy as np

from phalanx.mpc.field import FieldVec, combine_rows, sub
from phalanx.mpc.prg import expand
from phalanx.mpc.przs import KeySet, f_a, key_sets
from phalanx.mpc.shamir import point


def mask_of(keys: Mapping[KeySet, bytes], length: int, label: str) -> FieldVec:
    """ρ = Σ_A PRG(k_A) over every key set."""
    rows = np.stack([expand(k, length, "mask", label) for k in keys.values()])
    out: FieldVec = combine_rows([[1] * len(keys)], rows)[0]
    return out


def share_masked(secret: FieldVec, *, m: int, t: int, keys: Mapping[KeySet, bytes],
                 label: str) -> FieldVec:
    """The public masked vector c = z − ρ (``keys`` must hold one key per set of m − t)."""
    if sorted(keys) != key_sets(m, t):
        raise ValueError(f"masked sharing needs one key per set of m - t = {m - t} servers")
    return sub(secret, mask_of(keys, secret.shape[0], label))


def masked_share(masked: FieldVec, keys: Mapping[KeySet, bytes], server: int, *, m: int,
                 label: str) -> FieldVec:
    """Server ``server``'s Shamir share c + Σ_{A ∋ j} f_A(α_j)·PRG(k_A)."""
    sets = [a for a in keys if server in a]
    rows = np.empty((len(sets) + 1, masked.shape[0]), np.uint64)
    rows[0] = masked
    for r, a in enumerate(sets, start=1):
        rows[r] = expand(keys[a], masked.shape[0], "mask", label)
    coeffs = [1] + [f_a(a, m, point(server)) for a in sets]
    out: FieldVec = combine_rows([coeffs], rows)[0]
    return out
