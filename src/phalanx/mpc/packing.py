"""The 61-bit packing of field vectors (protocol.md §2 wire form): 64 elements in 61 words.

Element i occupies bits 61·i … 61·i + 60 of the little-endian word stream; one spare word at the
end keeps every kernel branch-free. ``messages`` (the codec), ``client_kernels`` (sharing
straight into packed words) and ``checks`` (reading packed shares in place) share these.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from phalanx.mpc.field import FieldVec, P

_P = np.uint64(P)


def packed_words(n: int) -> int:
    """Words needed for n packed elements (one spare word keeps the kernels branch-free)."""
    return (61 * n + 63) // 64 + 1


@nb.njit(cache=True, nogil=True)
def pack61_into(values: FieldVec, out: FieldVec) -> None:
    """OR the 61-bit packing of ``values`` into the zeroed words ``out``."""
    for i in range(values.shape[0]):
        pos = 61 * i
        w = pos >> 6
        off = np.uint64(pos & 63)
        v = values[i]
        out[w] |= v << off
        if off > np.uint64(3):
            out[w + 1] |= v >> (np.uint64(64) - off)


@nb.njit(cache=True, nogil=True)
def unpack61_into(words: FieldVec, out: FieldVec) -> None:
    """The first ``out.shape[0]`` packed elements of ``words``, into ``out``."""
    for i in range(out.shape[0]):
        pos = 61 * i
        w = pos >> 6
        off = np.uint64(pos & 63)
        v = words[w] >> off
        if off > np.uint64(3):
            v |= words[w + 1] << (np.uint64(64) - off)
        out[i] = v & _P


def pack_words(values: FieldVec) -> FieldVec:
    """The packed words of ``values`` (with the spare word)."""
    out = np.zeros(packed_words(values.shape[0]), np.uint64)
    pack61_into(np.ascontiguousarray(values, dtype=np.uint64), out)
    return out


def unpack_words(words: FieldVec, n: int) -> FieldVec:
    """The first n elements of packed ``words``, as a new array (the caller checks the length)."""
    out = np.empty(n, np.uint64)
    unpack61_into(words, out)
    return out


@nb.njit(cache=True, nogil=True)
def has_long_run(words: FieldVec) -> bool:
    """Whether some word holds 30 or more consecutive one bits: necessary for a packed element
    equal to p = 2^61 − 1 (its 61 one bits put at least 31 into one of the two words it
    spans). Six branch-free operations per word; random words pass w.p. ≈ 2^-25 each."""
    acc = np.uint64(0)
    for i in range(words.shape[0]):
        x = words[i]
        x &= x >> np.uint64(1)
        x &= x >> np.uint64(2)
        x &= x >> np.uint64(4)
        x &= x >> np.uint64(8)
        x &= x >> np.uint64(14)  # bit j set ⟺ bits j … j + 29 all set
        acc |= x
    return bool(acc != np.uint64(0))


@nb.njit(cache=True, nogil=True)
def count_p(words: FieldVec, n: int) -> int:
    """How many of the first n packed elements equal p (the 61-bit value that is not < p)."""
    bad = 0
    for i in range(n):
        pos = 61 * i
        w = pos >> 6
        off = np.uint64(pos & 63)
        v = words[w] >> off
        if off > np.uint64(3):
            v |= words[w + 1] << (np.uint64(64) - off)
        bad += (v & _P) == _P
    return bad


def tail_is_zero(words: FieldVec, n: int, n_words: int) -> bool:
    """Whether bits 61·n … 64·n_words − 1 of ``words`` (the unused high bits of the last
    packed word and the spare word) are all zero."""
    full, rem = divmod(61 * n, 64)
    if rem and int(words[full]) >> rem:
        return False
    start = full + (1 if rem else 0)
    return not bool(words[start:n_words].any())


def noncanonical(words: FieldVec, n: int, *, tail: bool = True) -> str | None:
    """Why ``words`` is not the one packing of n field elements (``pack_words``'s), or None:
    an element equal to p (a second encoding of 0), or — with ``tail`` — a nonzero unused bit
    in the last packed word or the spare word. ``words`` holds at least ``packed_words(n)``
    words (only those are looked at)."""
    n_words = packed_words(n)
    view = words[:n_words]
    if tail and not tail_is_zero(view, n, n_words):
        return f"nonzero padding bits after the {n} packed elements"
    if has_long_run(view) and count_p(view, n):
        return f"a packed element equals p (not a canonical field element), among n={n}"
    return None
