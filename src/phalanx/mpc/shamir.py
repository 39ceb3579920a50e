"""Shamir sharing over GF(p) with seed compression (protocol.md §2).

Server j (0-based) holds the evaluation point α_j = j + 1. A secret z is shared with a random
polynomial of degree t. With seed compression the shares of t chosen servers are pseudo-random
expansions of 32-byte seeds, and the other m − t shares follow by interpolation through
(0, z) and those t points: the t seeded shares are uniform and independent, which is exactly the
distribution of t shares of a uniformly random degree-t polynomial [Shamir79].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from phalanx.errors import ConfigError, ReconstructionError
from phalanx.mpc.client_kernels import CHUNK, share_chunk
from phalanx.mpc.field import FieldVec, combine_rows, inv, lagrange_coeffs
from phalanx.mpc.packing import packed_words, unpack_words
from phalanx.mpc.prg import ZEROS, Prg, derive, expand


def point(server: int) -> int:
    """The public evaluation point α of a 0-based server index."""
    return server + 1


def validate_committee(m: int, t: int) -> None:
    """m ≥ 3t + 1 and t ≥ 1 (protocol.md §2)."""
    if t < 1:
        raise ConfigError(f"threshold t={t} must be >= 1")
    if m < 3 * t + 1:
        raise ConfigError(f"committee m={m} needs m >= 3t+1={3 * t + 1} for threshold t={t}")


@dataclass(frozen=True, slots=True)
class SeededSharing:
    """The shares of one secret vector: seeds for ``seeded`` servers, vectors for the others."""

    seeds: Mapping[int, bytes]
    explicit: Mapping[int, FieldVec]
    length: int


def seeded_servers(m: int, t: int, offset: int) -> tuple[int, ...]:
    """The t servers whose shares are seeds, rotated by ``offset`` to balance server load."""
    return tuple(sorted((offset + k) % m for k in range(t)))


def expand_seeded(seed: bytes, length: int, label: str,
                  out: FieldVec | None = None) -> FieldVec:
    """The share vector a seeded server derives from its seed for item ``label`` (into
    ``out`` when given: ≥ length + 2 words)."""
    return expand(seed, length, "share", label, out=out)


def share_seeded(
    secret: FieldVec, *, m: int, t: int, seeds: Mapping[int, bytes], label: str
) -> SeededSharing:
    """Share ``secret``: the servers in ``seeds`` get seeds, the rest explicit share vectors."""
    n = secret.shape[0]
    others, words = share_packed(secret, m=m, t=t, seeds=seeds, label=label)
    explicit = {j: unpack_words(words[k], n) for k, j in enumerate(others)}
    return SeededSharing(dict(seeds), explicit, n)


def share_packed(
    secret: FieldVec, *, m: int, t: int, seeds: Mapping[int, bytes], label: str,
    out: FieldVec | None = None,
) -> tuple[list[int], FieldVec]:
    """The explicit shares of a seeded sharing (protocol.md §2), bit-packed: the servers not in
    ``seeds`` in increasing order, and for each a row of ``packing.packed_words(n)``
    words in the layout of ``messages.pack61`` (spare word zero), ready for the wire.

    One fused pass per chunk (:func:`client_kernels.share_chunk`) expands the seeded shares
    from the PRG into a small buffer and writes every explicit share; the values equal the
    Lagrange interpolation through (0, z) and the t shares ``expand_seeded`` gives.
    ``out`` (shape (m − t, packed_words(n))) is written when given: a client reuses one buffer
    across rounds instead of faulting in fresh pages every time.
    """
    if len(seeds) != t:
        raise ConfigError(f"seed compression needs t={t} seeds, got {len(seeds)}")
    z = np.ascontiguousarray(secret, dtype=np.uint64)
    n = z.shape[0]
    seeded = sorted(seeds)
    others = [j for j in range(m) if j not in seeds]
    xs = [0] + [point(j) for j in seeded]
    coef = np.array([lagrange_coeffs(xs, point(j)) for j in others], np.uint64).reshape(
        len(others), t + 1)
    alphas = np.array([point(j) for j in others], np.uint64)
    cinv = np.uint64(inv(point(seeded[0])) if t == 1 else 0)
    shape = (len(others), packed_words(n))
    if out is None or out.shape != shape:  # ``out``: a caller's reused buffer of this shape
        out = np.empty(shape, np.uint64)
    step = max(1, min(CHUNK, n))
    prgs = [Prg(derive(seeds[j], "share", label)) for j in seeded]
    buf = np.empty((t, step + 2), np.uint64)
    scratch = np.empty((2, step if t == 1 else 0), np.uint64)
    n_bad = 0
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        for r, g in enumerate(prgs):
            g.words_into(buf[r], hi - lo, ZEROS)
        n_bad += share_chunk(z[lo:hi], buf, coef, alphas, cinv, out, 61 * lo // 64,
                             scratch[0], scratch[1])
    if n_bad:  # a word equal to p, which the PRG rejects: redo with the exact expansion
        rows = np.stack([expand_seeded(seeds[j], n, label) for j in seeded])
        scratch = np.empty((2, n if t == 1 else 0), np.uint64)
        share_chunk(z, rows, coef, alphas, cinv, out, 0, scratch[0], scratch[1])
    out[:, (61 * n + 63) // 64:] = 0
    return others, out


def share(secret: FieldVec, *, m: int, t: int, prg: Prg) -> FieldVec:
    """Plain Shamir: an m × len(secret) matrix of shares of a fresh random degree-t polynomial."""
    coeffs = np.empty((t + 1, secret.shape[0]), np.uint64)
    coeffs[0] = secret
    for k in range(1, t + 1):
        coeffs[k] = prg.field_elements(secret.shape[0])
    vander = [[pow(point(j), k) for k in range(t + 1)] for j in range(m)]
    return combine_rows(vander, coeffs)


def reconstruct(servers: Sequence[int], shares: FieldVec, *, degree: int, at: int = 0) -> FieldVec:
    """Interpolate the value at ``at`` from the first degree+1 shares (rows of ``shares``).

    Raises ReconstructionError on fewer than degree+1 shares or duplicate servers. No error
    detection happens here: see :mod:`phalanx.mpc.rs` for decoding with errors.
    """
    if len(set(servers)) != len(servers):
        raise ReconstructionError(f"duplicate servers in {list(servers)}")
    if len(servers) < degree + 1:
        raise ReconstructionError(
            f"{len(servers)} shares cannot determine a degree-{degree} polynomial"
        )
    xs = [point(j) for j in servers[: degree + 1]]
    lam = lagrange_coeffs(xs, at)
    out: FieldVec = combine_rows([lam], shares[: degree + 1])[0]
    return out
