"""Fixed-point codec between real vectors and GF(p) (protocol.md §1, "Fixed point").

A real r is encoded as ``lattice · round(r · 2^f)`` mod p, negatives as p − |v|. Rounding is
stochastic (round up with probability equal to the fractional part), so the encoding is unbiased
and the error of a sum of n encodings grows like √n steps, not n. ``lattice`` = 2 puts vectors on
the even integers, which the projection test needs (its rows have coefficients ±1/2, §3.2).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ConfigError
from phalanx.mpc.client_kernels import CHUNK, all_finite, encode_chunk
from phalanx.mpc.field import FieldVec, P, centered
from phalanx.mpc.prg import ZEROS, Prg

OVERFLOW_BITS = 59
"""Honest encodings stay below 2^59 in magnitude, far from p/2 ≈ 2^60 (protocol.md §1)."""


def encode_fixed(
    values: NDArray[np.floating],
    frac_bits: int,
    prg: Prg | None = None,
    *,
    lattice: int = 1,
    saturate: bool = False,
) -> FieldVec:
    """Encode reals as field elements at scale ``lattice · 2^frac_bits``.

    With ``prg`` the rounding is stochastic (unbiased), otherwise to nearest. A value whose
    encoding reaches 2^59 raises ConfigError; with ``saturate`` (the best-effort client fed a
    malicious input) it is clamped to ±2^59 instead, which the servers' checks then reject.
    """
    return encode_fixed_sq(values, frac_bits, prg, lattice=lattice, saturate=saturate)[0]


def encode_fixed_sq(
    values: NDArray[np.floating],
    frac_bits: int,
    prg: Prg | None = None,
    *,
    lattice: int = 1,
    saturate: bool = False,
) -> tuple[FieldVec, int]:
    """:func:`encode_fixed` and, from the same pass, Σ x_j² mod p of the encoding (= the
    ``field.dot(x, x)`` a norm check needs, protocol.md §3.2).

    One numba pass reads float32 or float64 input as is; the stochastic rounding's PRG words
    are streamed in chunks through one small buffer, consuming the PRG exactly as
    ``prg.random_bytes(8 * len(values))`` (word j rounds value j).
    """
    if not 0 <= frac_bits <= 40:
        raise ConfigError(f"frac_bits={frac_bits} must be in [0, 40]")
    arr = np.asarray(values)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    vals = np.ascontiguousarray(arr).reshape(-1)
    if not all_finite(vals):
        raise ConfigError("cannot encode NaN or inf")
    n = vals.shape[0]
    # backed by a bytearray, not numpy's allocator: a client keeps this vector until its second
    # upload, and numpy's huge-page madvise made fresh 8 MB arrays stall on compaction (THP
    # defrag=madvise) once memory filled: 18 ms against 4 ms per client at d = 10^6 here
    out = np.frombuffer(bytearray(8 * n), np.uint64)
    limit = float(2**OVERFLOW_BITS) / lattice
    scale = float(2**frac_bits)
    sq = np.uint64(0)
    n_big = 0
    if prg is None or n == 0:
        n_big, sq = encode_chunk(vals, np.zeros(0, np.uint64), scale, lattice, limit, saturate,
                                 out, sq)
    else:
        step = min(CHUNK, n)
        buf = np.empty(step + 2, np.uint64)
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            words = prg.words_into(buf, hi - lo, ZEROS)
            big, sq = encode_chunk(vals[lo:hi], words, scale, lattice, limit, saturate,
                                   out[lo:hi], sq)
            n_big += big
    if n_big and not saturate:
        worst = float(np.abs(vals).max())
        raise ConfigError(
            f"value {worst:.6g} at frac_bits={frac_bits} reaches 2^{OVERFLOW_BITS}; "
            "lower frac_bits or bound the input"
        )
    return out, int(sq) % P


def decode_fixed(values: FieldVec, frac_bits: int, *, lattice: int = 1) -> NDArray[np.float64]:
    """Field elements back to reals: centered representative / (lattice · 2^frac_bits)."""
    return centered(values).astype(np.float64) / float(lattice * 2**frac_bits)


def encode_int(value: int) -> int:
    """A signed integer as a field element."""
    if abs(value) >= P // 2:
        raise ConfigError(f"integer {value} does not fit in the field")
    return value % P
