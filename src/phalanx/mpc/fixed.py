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
from phalanx.mpc.field import FieldVec, P, centered, from_signed
from phalanx.mpc.prg import Prg

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
    if not 0 <= frac_bits <= 40:
        raise ConfigError(f"frac_bits={frac_bits} must be in [0, 40]")
    scaled = np.asarray(values, dtype=np.float64) * float(2**frac_bits)
    limit = float(2**OVERFLOW_BITS) / lattice
    if not bool(np.isfinite(scaled).all()):
        raise ConfigError("cannot encode NaN or inf")
    too_big = np.abs(scaled) >= limit
    if bool(too_big.any()):
        if not saturate:
            worst = float(np.abs(values).max())
            raise ConfigError(
                f"value {worst:.6g} at frac_bits={frac_bits} reaches 2^{OVERFLOW_BITS}; "
                "lower frac_bits or bound the input"
            )
        inner = float(np.nextafter(limit, 0.0))
        scaled = np.clip(scaled, -inner, inner)
    if prg is None:
        ints = np.rint(scaled)
    else:
        low = np.floor(scaled)
        ints = low + (prg.uniform01(scaled.size) < (scaled - low))
    return from_signed(ints.astype(np.int64) * np.int64(lattice))


def decode_fixed(values: FieldVec, frac_bits: int, *, lattice: int = 1) -> NDArray[np.float64]:
    """Field elements back to reals: centered representative / (lattice · 2^frac_bits)."""
    return centered(values).astype(np.float64) / float(lattice * 2**frac_bits)


def encode_int(value: int) -> int:
    """A signed integer as a field element."""
    if abs(value) >= P // 2:
        raise ConfigError(f"integer {value} does not fit in the field")
    return value % P
