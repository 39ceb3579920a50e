"""Vector arithmetic over GF(p), p = 2^61 − 1, compiled with numba (protocol.md §1).

Elements are ``numpy.uint64`` in ``[0, p)``. The 61-bit product is split into 32-bit limbs and
folded with 2^61 ≡ 1 (mod p), so every kernel stays in 64-bit integer arithmetic. Scalars on the
Python side are plain ``int`` (exact, arbitrary precision); vectors go through these kernels.
All kernels are ``cache=True`` so the CLI does not pay the JIT at every start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NewType

import numba as nb
import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ConfigError

P = (1 << 61) - 1
"""The Mersenne prime 2^61 − 1."""

Fe = NewType("Fe", int)
FieldVec = NDArray[np.uint64]

_P = np.uint64(P)
_M32 = np.uint64(0xFFFFFFFF)
_M29 = np.uint64((1 << 29) - 1)
_S61 = np.uint64(61)
_S32 = np.uint64(32)
_S29 = np.uint64(29)
_S3 = np.uint64(3)


@nb.njit(inline="always", cache=True)
def mulmod(a: np.uint64, b: np.uint64) -> np.uint64:
    """a·b mod p for a, b < 2^61: four 32-bit limb products folded with 2^61 ≡ 1.

    The casts matter: numba promotes int64 ⊕ uint64 to float64, so an int argument would
    silently lose precision (a bug this cast prevents; see tests/unit/test_mpc_checks.py).
    """
    a = np.uint64(a)
    b = np.uint64(b)
    a_lo = a & _M32
    a_hi = a >> _S32
    b_lo = b & _M32
    b_hi = b >> _S32
    lo = a_lo * b_lo
    mid = a_lo * b_hi + a_hi * b_lo
    hi = a_hi * b_hi
    r = (lo & _P) + (lo >> _S61) + (hi << _S3) + (mid >> _S29) + ((mid & _M29) << _S32)
    r = (r & _P) + (r >> _S61)
    if r >= _P:
        r -= _P
    return r


@nb.njit(inline="always", cache=True)
def addmod(a: np.uint64, b: np.uint64) -> np.uint64:
    """a + b mod p for a, b < p."""
    r = np.uint64(a) + np.uint64(b)
    if r >= _P:
        r -= _P
    return r


@nb.njit(inline="always", cache=True)
def submod(a: np.uint64, b: np.uint64) -> np.uint64:
    """a − b mod p for a, b < p."""
    a = np.uint64(a)
    b = np.uint64(b)
    if a >= b:
        return a - b
    return a + _P - b


@nb.njit(cache=True, nogil=True)
def _combine_rows(coeffs: FieldVec, rows: FieldVec, out: FieldVec) -> None:
    """out[k, j] = Σ_r coeffs[k, r]·rows[r, j] mod p."""
    n_out, n_rows = coeffs.shape
    d = rows.shape[1]
    n_chunks = max(1, min(64, d // 4096))
    for c in range(n_chunks):
        lo = c * d // n_chunks
        hi = (c + 1) * d // n_chunks
        for k in range(n_out):
            for j in range(lo, hi):
                acc = np.uint64(0)
                for r in range(n_rows):
                    acc = addmod(acc, mulmod(coeffs[k, r], rows[r, j]))
                out[k, j] = acc


@nb.njit(cache=True, nogil=True)
def _binop(a: FieldVec, b: FieldVec, op: int, out: FieldVec) -> None:
    """Elementwise add (0), sub (1) or mul (2), in parallel."""
    for j in range(a.shape[0]):
        if op == 0:
            out[j] = addmod(a[j], b[j])
        elif op == 1:
            out[j] = submod(a[j], b[j])
        else:
            out[j] = mulmod(a[j], b[j])


@nb.njit(cache=True, nogil=True)
def _axpy(y: FieldVec, a: np.uint64, x: FieldVec) -> None:
    """y ← y + a·x in place."""
    for j in range(y.shape[0]):
        y[j] = addmod(y[j], mulmod(a, x[j]))


@nb.njit(cache=True, nogil=True)
def _dot(a: FieldVec, b: FieldVec) -> np.uint64:
    """Σ a_j b_j mod p, with per-chunk partial sums."""
    d = a.shape[0]
    n_chunks = max(1, min(64, d // 4096))
    part = np.zeros(n_chunks, np.uint64)
    for c in range(n_chunks):
        lo = c * d // n_chunks
        hi = (c + 1) * d // n_chunks
        acc = np.uint64(0)
        for j in range(lo, hi):
            acc = addmod(acc, mulmod(a[j], b[j]))
        part[c] = acc
    total = np.uint64(0)
    for c in range(n_chunks):
        total = addmod(total, part[c])
    return total


@nb.njit(cache=True)
def _horner(coeffs: FieldVec, x: np.uint64) -> np.uint64:
    """Σ_k coeffs[k]·x^k by Horner's rule."""
    acc = np.uint64(0)
    for k in range(coeffs.shape[0] - 1, -1, -1):
        acc = addmod(mulmod(acc, x), coeffs[k])
    return acc


def as_fe(values: object) -> FieldVec:
    """A contiguous uint64 array of field elements (checked to lie in [0, p))."""
    arr = np.ascontiguousarray(values, dtype=np.uint64)
    if arr.size and int(arr.max()) >= P:
        raise ConfigError(f"field element {int(arr.max())} is not below p=2^61-1")
    return arr


def add(a: FieldVec, b: FieldVec) -> FieldVec:
    """a + b elementwise."""
    out = np.empty_like(a)
    _binop(a, b, 0, out)
    return out


def sub(a: FieldVec, b: FieldVec) -> FieldVec:
    """a − b elementwise."""
    out = np.empty_like(a)
    _binop(a, b, 1, out)
    return out


def mul(a: FieldVec, b: FieldVec) -> FieldVec:
    """a·b elementwise."""
    out = np.empty_like(a)
    _binop(a, b, 2, out)
    return out


def neg(a: FieldVec) -> FieldVec:
    """−a elementwise."""
    return sub(np.zeros_like(a), a)


def axpy(y: FieldVec, a: int, x: FieldVec) -> None:
    """y ← y + a·x (in place on ``y``, which the caller owns)."""
    _axpy(y, np.uint64(a % P), x)


def scale(x: FieldVec, a: int) -> FieldVec:
    """a·x."""
    y = np.zeros_like(x)
    _axpy(y, np.uint64(a % P), x)
    return y


def dot(a: FieldVec, b: FieldVec) -> int:
    """⟨a, b⟩ mod p."""
    return int(_dot(a, b))


def horner(coeffs: Sequence[int], x: int) -> int:
    """Evaluate the polynomial Σ coeffs[k] X^k at x."""
    return int(_horner(np.array([c % P for c in coeffs], np.uint64), np.uint64(x % P)))


def combine_rows(coeffs: Sequence[Sequence[int]], rows: FieldVec) -> FieldVec:
    """The matrix product coeffs · rows mod p: each output row is a linear combination.

    This one kernel does Shamir share derivation, Lagrange interpolation and RS syndromes.
    """
    c = np.array([[v % P for v in row] for row in coeffs], np.uint64).reshape(len(coeffs), -1)
    rows2 = np.ascontiguousarray(rows.reshape(rows.shape[0], -1))
    if c.shape[1] != rows2.shape[0]:
        raise ConfigError(f"{c.shape[1]} coefficients per row for {rows2.shape[0]} rows")
    out = np.empty((c.shape[0], rows2.shape[1]), np.uint64)
    _combine_rows(c, rows2, out)
    return out


def combine_matrix(coeffs: FieldVec, rows: FieldVec) -> FieldVec:
    """:func:`combine_rows` for coefficients already reduced into a uint64 matrix."""
    rows2 = np.ascontiguousarray(rows.reshape(rows.shape[0], -1))
    if coeffs.shape[1] != rows2.shape[0]:
        raise ConfigError(f"{coeffs.shape[1]} coefficients per row for {rows2.shape[0]} rows")
    out = np.empty((coeffs.shape[0], rows2.shape[1]), np.uint64)
    _combine_rows(np.ascontiguousarray(coeffs), rows2, out)
    return out


def inv(a: int) -> int:
    """a^{-1} mod p (ConfigError for 0)."""
    if a % P == 0:
        raise ConfigError("0 has no inverse mod p")
    return pow(a % P, P - 2, P)


def lagrange_coeffs(xs: Sequence[int], at: int) -> list[int]:
    """λ_i with f(at) = Σ λ_i f(xs[i]) for every f of degree < len(xs)."""
    if len(set(xs)) != len(xs):
        raise ConfigError(f"interpolation points {list(xs)} are not distinct")
    out = []
    for i, xi in enumerate(xs):
        num, den = 1, 1
        for k, xk in enumerate(xs):
            if k != i:
                num = num * (at - xk) % P
                den = den * (xi - xk) % P
        out.append(num * inv(den) % P)
    return out


def centered(values: FieldVec) -> NDArray[np.int64]:
    """The representative in (−p/2, p/2] as int64 (the decoding of protocol.md §1)."""
    v = values.astype(np.int64)
    return np.where(values > np.uint64(P // 2), v - np.int64(P), v)


def centered_int(value: int) -> int:
    """Scalar form of :func:`centered`."""
    value %= P
    return value - P if value > P // 2 else value


def from_signed(values: NDArray[np.int64]) -> FieldVec:
    """Signed integers with |v| < p to field elements (negatives as p − |v|)."""
    v = np.asarray(values, dtype=np.int64)
    out = v.astype(np.uint64)
    neg_mask = v < 0
    out[neg_mask] = np.uint64(P) - (-v[neg_mask]).astype(np.uint64)
    return out
