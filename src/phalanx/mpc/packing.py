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
