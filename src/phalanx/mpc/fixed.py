"""Fixed-point codec between real vectors and GF(p) (protocol.md §1, "Fixed point").

A real r is encoded as ``lattice · round(r · 2^f)`` mod p, negatives as p − |v|. Rounding is
stochastic (round up with probability equal to the fractional part), so the encoding is unbiased
and the error of a sum of n encodings grows like √n steps, not n. ``lattice`` = 2 puts vectors on
the even integers, which the projection test needs (its rows have coefficients ±1/2, §3.2).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ConfigError
from phalanx.mpc.field import FieldVec, P, centered
from phalanx.mpc.prg import Prg

OVERFLOW_BITS = 59
"""Honest encodings stay below 2^59 in magnitude, far from p/2 ≈ 2^60 (protocol.md §1)."""
_P = np.uint64(P)


@nb.njit(cache=True, nogil=True)
def _encode(values: NDArray[np.float64], scale: float, words: FieldVec, lattice: int,
            limit: float, saturate: bool, out: FieldVec) -> int:
    """Stochastic (words non-empty) or nearest rounding of values·scale, times lattice, into
    the field; returns how many values reached the limit (clamped when ``saturate``)."""
    n_big = 0
    stochastic = words.shape[0] == values.shape[0]
    inner = limit * (1.0 - 2.0**-52)
    for j in range(values.shape[0]):
        v = values[j] * scale
        if not (abs(v) < limit):
            n_big += 1
            if not saturate:
                continue
            v = min(max(v, -inner), inner)
        if stochastic:
            low = np.floor(v)
            u = float(words[j] >> np.uint64(11)) * (1.0 / 9007199254740992.0)
            r = np.int64(low) + (1 if u < v - low else 0)
        else:
            r = np.int64(np.rint(v))
        r *= lattice
        out[j] = np.uint64(r) if r >= 0 else _P - np.uint64(-r)
    return n_big


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
    if not 0 <= frac_bits <= 40:
        raise ConfigError(f"frac_bits={frac_bits} must be in [0, 40]")
    vals = np.ascontiguousarray(values, dtype=np.float64)
    if not bool(np.isfinite(vals).all()):
        raise ConfigError("cannot encode NaN or inf")
    words = (np.frombuffer(prg.random_bytes(8 * vals.size), np.uint64) if prg is not None
             else np.zeros(0, np.uint64))
    out = np.empty(vals.size, np.uint64)
    limit = float(2**OVERFLOW_BITS) / lattice
    n_big = _encode(vals.reshape(-1), float(2**frac_bits), words, lattice, limit, saturate, out)
    if n_big and not saturate:
        worst = float(np.abs(vals).max())
        raise ConfigError(
            f"value {worst:.6g} at frac_bits={frac_bits} reaches 2^{OVERFLOW_BITS}; "
            "lower frac_bits or bound the input"
        )
    return out


def decode_fixed(values: FieldVec, frac_bits: int, *, lattice: int = 1) -> NDArray[np.float64]:
    """Field elements back to reals: centered representative / (lattice · 2^frac_bits)."""
    return centered(values).astype(np.float64) / float(lattice * 2**frac_bits)


def encode_int(value: int) -> int:
    """A signed integer as a field element."""
    if abs(value) >= P // 2:
        raise ConfigError(f"integer {value} does not fit in the field")
    return value % P
