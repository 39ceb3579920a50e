"""A cryptographic PRG over GF(p) keyed by explicit seeds (protocol.md §1, "Randomness").

AES-256 in counter mode (``cryptography``, AES-NI) expands a 32-byte seed. Field elements take the
low 61 bits of each 64-bit word; the single value 2^61 − 1 (≡ 0, not a canonical element) is
rejected and replaced by the next word of the stream, so the output is exactly uniform on
[0, p) — no modular-reduction bias. A rejection happens with probability 2^-61 per element.
"""

from __future__ import annotations

import hashlib

import numba as nb
import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

from phalanx.errors import ConfigError
from phalanx.mpc.field import FieldVec, P

SEED_BYTES = 32
_P = np.uint64(P)
CHUNK_WORDS = 1 << 15
"""Words per key-stream chunk (256 KiB: stays in L2 between encryption and its use)."""
ZEROS = memoryview(bytes(8 * CHUNK_WORDS))
"""One shared block of zero bytes that chunked callers encrypt into key stream."""


@nb.njit(cache=True, nogil=True)
def mask61(words: FieldVec) -> int:
    """Keep the low 61 bits in place; count the words equal to p (to be rejected)."""
    n_bad = 0
    for j in range(words.shape[0]):
        v = words[j] & _P
        words[j] = v
        if v == _P:
            n_bad += 1
    return n_bad


def derive(seed: bytes, *labels: str | int | bytes) -> bytes:
    """A 32-byte sub-seed: SHA-256 over the seed and length-prefixed labels (domain separation)."""
    h = hashlib.sha256(b"phalanx/prg/v1")
    h.update(len(seed).to_bytes(2, "big") + seed)
    for label in labels:
        raw = label if isinstance(label, bytes) else str(label).encode()
        h.update(len(raw).to_bytes(4, "big") + raw)
    return h.digest()


class Prg:
    """A stream of pseudo-random bytes, field elements and floats from one 32-byte seed."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise ConfigError(f"PRG seed has {len(seed)} bytes, expected {SEED_BYTES}")
        cipher = Cipher(algorithms.AES(seed), modes.CTR(b"\x00" * 16))
        self._enc = cipher.encryptor()

    def random_bytes(self, n: int) -> bytes:
        """The next n bytes of the key stream."""
        return self._enc.update(b"\x00" * n)

    def field_elements(self, n: int, out: FieldVec | None = None) -> FieldVec:
        """n independent uniform elements of GF(p), written into ``out[:n]`` when given.

        ``out`` (length ≥ n + 2, for the cipher's block slack) lets a caller reuse one buffer;
        the key stream is generated in place over it.
        """
        buf = np.empty(n + 2, np.uint64) if out is None else out
        if buf.shape[0] < n + 2:
            raise ConfigError(f"PRG output buffer has {buf.shape[0]} words, needs n+2={n + 2}")
        if n == 0:
            return buf[:0]
        # Chunk by chunk from one shared block of zeros, each chunk masked while it is still
        # in cache: 1.1 ms per 10^6 elements where one 8 MB pass over a fresh calloc'ed zero
        # buffer, then a masking pass, cost 1.7-4.5 ms (page faults, two trips to memory).
        # The key stream is the same as one big call (CTR continues across calls).
        n_bad = 0
        for lo in range(0, n, CHUNK_WORDS):
            hi = min(n, lo + CHUNK_WORDS)
            self._enc.update_into(ZEROS[: 8 * (hi - lo)],
                                  memoryview(buf[lo : hi + 2].data).cast("B"))
            n_bad += mask61(buf[lo:hi])
        vec = buf[:n]
        while n_bad:
            bad = np.flatnonzero(vec == _P)
            vec[bad] = self.field_elements(bad.size)
            n_bad = int((vec == _P).sum())
        return vec

    def words_into(self, out: FieldVec, n: int,
                   zeros: bytes | memoryview | None = None) -> FieldVec:
        """The next 8n bytes of the key stream as n raw 64-bit words, written into ``out[:n]``.

        ``out`` needs n + 2 words (block slack), as for :meth:`field_elements`; ``zeros`` (at
        least 8n zero bytes) lets a caller that streams in chunks reuse one plaintext buffer.
        The stream position advances exactly as ``random_bytes(8 * n)`` would (protocol.md §1).
        """
        if out.shape[0] < n + 2:
            raise ConfigError(f"PRG output buffer has {out.shape[0]} words, needs n+2={n + 2}")
        if n:
            src = bytes(8 * n) if zeros is None else memoryview(zeros)[: 8 * n]
            self._enc.update_into(src, memoryview(out.data).cast("B"))
        return out[:n]

    def field_element(self) -> int:
        """One uniform element of GF(p) as an int."""
        return int(self.field_elements(1)[0])

    def uniform01(self, n: int) -> NDArray[np.float64]:
        """n floats uniform on [0, 1) with 53 random bits each."""
        raw = np.frombuffer(self.random_bytes(8 * n), np.uint64)
        return (raw >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def sign_patterns(self, d: int, groups: int) -> NDArray[np.uint8]:
        """A d × groups byte matrix: bit l of byte g is the sign bit of row 8g + l."""
        return np.frombuffer(self.random_bytes(d * groups), np.uint8).reshape(d, groups).copy()

    def seed(self) -> bytes:
        """A fresh 32-byte seed from the stream."""
        return self.random_bytes(SEED_BYTES)


def expand(seed: bytes, n: int, *labels: str | int | bytes,
           out: FieldVec | None = None) -> FieldVec:
    """The n field elements of ``Prg(derive(seed, *labels))``: a seeded share vector (written
    into ``out[:n]`` when given, a reused buffer of ≥ n + 2 words)."""
    return Prg(derive(seed, *labels)).field_elements(n, out)
