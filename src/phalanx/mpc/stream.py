"""Reading a sealed upload piece by piece, so a server's pass runs on each piece in cache.

A server used to decrypt a client's 7.6 MB part-1 bundle into a buffer and then run the fused
pass (:mod:`phalanx.mpc.checks`) over that buffer: the plaintext went out to memory and came
back. Here the envelope is opened as a :class:`Reader`, the bundle's header and small items are
read first (:func:`read_bundle`), and its long vector is left in the reader as a
:class:`PackedStream` that the pass reads chunk by chunk (:func:`chunk_of`). The reader is
verified (tag and commitment) only after the pass, so the pass's tentative accumulation is
undone when it fails: :class:`StoredVector` re-reads the same bytes (docs/decisions.md;
docs/mpc.md, deviation 10). A seeded server's share (:class:`SeededStream`) and a masked
share (:class:`MaskedStream`) are computed chunk by chunk the same way.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from phalanx.errors import ConfigError
from phalanx.mpc.field import FieldVec
from phalanx.mpc.masked import add_masked_words, masked_share, weight
from phalanx.mpc.messages import (
    Packed61,
    ShareBundle,
    check_packed,
    check_padding,
    decode_bundle,
    decode_header,
    decode_item,
)
from phalanx.mpc.packing import (
    count_p,
    has_long_run,
    packed_words,
    tail_is_zero,
    unpack61_into,
    unpack_words,
)
from phalanx.mpc.prg import CHUNK_WORDS, ZEROS, Prg, derive, mask61
from phalanx.mpc.przs import KeySet
from phalanx.mpc.shamir import expand_seeded, point

CHUNK = CHUNK_WORDS
"""Coordinates per chunk of a streamed pass (a multiple of 64, so packed chunks start on a word):
4 clients' chunks, the patterns, ĝ_0 and the accumulator slices stay in L2 (about 1.5 MB)."""

_HEAD = struct.Struct(">4sIIBBB")  # messages' bundle header


class Reader(Protocol):
    """A sealed upload opened piece by piece (``net.envelope.SealedReader``)."""

    size: int

    def read_into(self, out: memoryview, n: int) -> memoryview:
        """The next n payload bytes into ``out`` (n + 15 bytes long); a view of ``out[:n]``."""

    def verify(self) -> None:
        """Raise when the payload does not authenticate (or was not read to its end)."""


class BytesReader:
    """A :class:`Reader` over plain bytes (no encryption: ``FramingEnvelope``, tests); the
    observer sees the whole envelope at once."""

    def __init__(self, data: bytes | memoryview,
                 observe: Callable[[memoryview], object] | None = None) -> None:
        self._data = memoryview(data)
        self.size = len(data)
        self._pos = 0
        if observe is not None:
            observe(self._data)

    def read_into(self, out: memoryview, n: int) -> memoryview:
        if n < 0 or self._pos + n > self.size:
            raise ConfigError(f"read of {n} bytes at {self._pos} of a {self.size}-byte payload")
        out[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return out[:n]

    def verify(self) -> None:
        if self._pos != self.size:
            raise ConfigError(f"payload read to {self._pos} of {self.size} bytes")


def _read(reader: Reader, n: int) -> bytes:
    out = memoryview(bytearray(n + 15))
    return bytes(reader.read_into(out, n))


def read_all(reader: Reader) -> bytes:
    """A small payload whole, authenticated (``verify`` raises when it does not)."""
    data = _read(reader, reader.size)
    reader.verify()
    return data


class _InOrder:
    """What the streams share: n coordinates, read once, in chunks, in order (``done`` so far)."""

    n: int
    done: int

    @property
    def shape(self) -> tuple[int]:
        return (self.n,)

    def _advance(self, lo: int, hi: int) -> None:
        """Check that [lo, hi) is the next chunk (lo a multiple of 64, at most CHUNK long)."""
        if lo != self.done or not lo < hi <= self.n or hi - lo > CHUNK or lo % 64:
            raise ConfigError(f"stream chunk [{lo}, {hi}) after {self.done} of {self.n}")
        self.done = hi


class PackedStream(_InOrder):
    """The last vector of an explicit bundle, still in its reader: ``chunk(lo, hi)`` reads the
    packed words of coordinates lo … hi − 1 (in order, lo a multiple of 64) into one reused
    buffer. ``clock`` (injected, like the committee's) times the reads into ``seconds``.

    Each chunk is checked for the one packing of its values while it is in cache (no element
    equal to p; after the last element, zero bits up to the end): a chunk that fails is still
    handed to the pass (the pass reads values masked to 61 bits, and p counts as 0), and
    :meth:`drain` raises, so the upload is rolled back like one whose tag fails."""

    def __init__(self, reader: Reader, n: int, clock: Callable[[], float] | None = None) -> None:
        self.reader, self.n = reader, n
        self.clock = clock
        self.seconds = 0.0
        self.done = 0
        #: why the packing read so far is not canonical (None while it is)
        self.fault: str | None = None
        self._empty_read = False
        words = 61 * min(n, CHUNK) // 64 + 2
        self._buf = bytearray(8 * words + 16)

    def chunk(self, lo: int, hi: int) -> Packed61:
        """Coordinates lo … hi − 1, packed (hi − lo ≤ CHUNK; the last chunk ends at n)."""
        self._advance(lo, hi)
        t0 = self.clock() if self.clock is not None else 0.0
        first = 61 * lo // 64
        last = packed_words(self.n) if hi == self.n else 61 * hi // 64
        view = memoryview(self._buf)
        self.reader.read_into(view, 8 * (last - first))
        if self.clock is not None:
            self.seconds += self.clock() - t0
        # the last element of a middle chunk reads one word past it: the masked read ignores it
        words = np.frombuffer(self._buf, np.uint64, count=last - first + 1)
        if self.fault is None:
            self._check(words[:last - first], hi - lo, hi == self.n)
        return Packed61(words, hi - lo)

    def _check(self, words: FieldVec, m: int, is_last: bool) -> None:
        """Record why a chunk's packing of m elements is not canonical (lo is a multiple of 64,
        so its elements start at bit 0 of ``words`` and, but for the last chunk, fill it)."""
        if is_last and not tail_is_zero(words, m, words.shape[0]):
            self.fault = f"nonzero padding bits after the {self.n} packed elements"
        elif has_long_run(words) and count_p(words, m):
            self.fault = f"a packed element equals p (not a canonical field element), n={self.n}"

    def drain(self) -> None:
        """Read what is left (unused), so the reader can be verified; ConfigError when some
        chunk was not the canonical packing of its values (call it once the pass is done, also
        when the pass read everything)."""
        while self.done < self.n:
            self.chunk(self.done, min(self.n, self.done + CHUNK))
        if self.n == 0 and not self._empty_read:  # no chunk: only the spare word to read
            self._empty_read = True
            word = self.reader.read_into(memoryview(self._buf), 8)
            if any(bytes(word)):
                self.fault = "nonzero padding bits after the 0 packed elements"
        if self.fault is not None:
            raise ConfigError(f"streamed bundle vector: {self.fault}")

    def unpack(self, *, strict: bool = True) -> FieldVec:
        """The whole (unread) vector, unpacked into a fresh array. ``strict=False`` reads a
        non-canonical packing as the pass read it (an element equal to p counts as 0): what
        a rollback of an upload that failed its check must subtract."""
        if self.done:
            raise ConfigError("stream already partly read")
        raw = bytearray(8 * packed_words(self.n) + 15)
        self.reader.read_into(memoryview(raw), 8 * packed_words(self.n))
        self.done = self.n
        words = np.frombuffer(raw, np.uint64, count=packed_words(self.n))
        if strict:
            check_packed(words, self.n, "streamed bundle vector")
            return unpack_words(words, self.n)
        out = unpack_words(words, self.n)
        out[out == np.uint64((1 << 61) - 1)] = 0
        return out


class SeededStream(_InOrder):
    """A seeded server's share vector (``shamir.expand_seeded``) expanded chunk by chunk into
    one reused buffer as the pass reads it, instead of 8 MB at once that the pass then reads
    back. The values are exactly the expansion's: a key-stream word equal to p (probability
    2^-61 per word) is replaced by words from after the n-th, so on meeting one the stream
    switches to the whole expansion for the rest."""

    def __init__(self, seed: bytes, label: str, n: int) -> None:
        self.seed, self.label, self.n = seed, label, n
        self.done = 0
        self._prg = Prg(derive(seed, "share", label))
        self._buf = np.empty(min(n, CHUNK) + 2, np.uint64)
        self._full: FieldVec | None = None

    def chunk(self, lo: int, hi: int) -> FieldVec:
        """Coordinates lo … hi − 1 (in order, hi − lo ≤ CHUNK, lo a multiple of 64)."""
        self._advance(lo, hi)
        if self._full is None:
            vec = self._prg.words_into(self._buf, hi - lo, ZEROS)
            if not mask61(vec):
                return vec
            self._full = expand_seeded(self.seed, self.n, self.label)
        return self._full[lo:hi]

    def unpack(self) -> FieldVec:
        """The whole vector, expanded again into a fresh array."""
        return expand_seeded(self.seed, self.n, self.label)


class MaskedStream(_InOrder):
    """A server's Shamir share of a masked item (``masked.masked_share``: the public masked
    vector c plus the weighted key streams of the sets it belongs to), computed chunk by chunk
    as the pass reads it: c is read from the public blob in place (packed) and each key's
    stream is expanded into one reused buffer. Exactly ``masked_share``'s values; a rejected
    key-stream word (probability 2^-61) switches to the whole computation, as
    :class:`SeededStream` does."""

    def __init__(self, masked: FieldVec | Packed61, keys: dict[KeySet, bytes], server: int, *,
                 m: int, label: str) -> None:
        self.masked, self.keys, self.server, self.m_servers, self.label = (
            masked, keys, server, m, label)
        self.n = masked.shape[0]
        self.done = 0
        mine = sorted(a for a in keys if server in a)
        self._terms = [(Prg(derive(keys[a], "mask", label)), weight(a, m, point(server)))
                       for a in mine]
        size = min(self.n, CHUNK) + 2
        self._out = np.empty(size, np.uint64)
        self._key = np.empty(size, np.uint64)
        self._full: FieldVec | None = None

    def chunk(self, lo: int, hi: int) -> FieldVec:
        """Coordinates lo … hi − 1 (in order, hi − lo ≤ CHUNK, lo a multiple of 64)."""
        self._advance(lo, hi)
        if self._full is not None:
            return self._full[lo:hi]
        out = self._out[:hi - lo]
        c = self.masked
        if isinstance(c, Packed61):
            unpack61_into(c.words[61 * lo // 64:], out)
        else:
            out[:] = c[lo:hi]
        for prg, w in self._terms:
            if add_masked_words(out, prg.words_into(self._key, hi - lo, ZEROS), w):
                self._full = self.unpack()
                return self._full[lo:hi]
        return out

    def unpack(self) -> FieldVec:
        """The whole share, computed again into a fresh array."""
        c = self.masked.unpack() if isinstance(self.masked, Packed61) else self.masked
        return masked_share(c, self.keys, self.server, m=self.m_servers, label=self.label)


@dataclass(frozen=True, slots=True)
class StoredVector:
    """A share vector that stays in its stored upload after a streamed pass: ``unpack`` reads
    it again (rare: a rejected client's rollback, a dispute)."""

    n: int
    load: Callable[[], FieldVec]

    @property
    def shape(self) -> tuple[int]:
        return (self.n,)

    def unpack(self) -> FieldVec:
        return self.load()


def is_stream(v: object) -> bool:
    """Whether a share vector is read chunk by chunk (:func:`chunk_of`, in order, once)."""
    return isinstance(v, (PackedStream, SeededStream, MaskedStream))


def chunk_of(v: FieldVec | Packed61 | PackedStream | SeededStream | MaskedStream, lo: int,
             hi: int) -> FieldVec | Packed61:
    """Coordinates lo … hi − 1 of a share vector in any of its forms (packed: lo % 64 == 0)."""
    if isinstance(v, (PackedStream, SeededStream, MaskedStream)):
        return v.chunk(lo, hi)
    if isinstance(v, Packed61):
        return Packed61(v.words[61 * lo // 64:], hi - lo)
    return v[lo:hi]


def read_bundle(reader: Reader, clock: Callable[[], float] | None = None) -> ShareBundle:
    """``messages.decode_bundle`` over a reader. An explicit bundle's last vector is left in the
    reader as a :class:`PackedStream` (its other items are read and unpacked); seeded and
    masked bundles are small and read whole. ConfigError on a malformed bundle — whose size is
    not exactly what its table says, whose mode is unknown, whose labels are not UTF-8 or
    repeat, whose padding is not zero or whose packed items are not canonical; the streamed
    vector's canonical form is checked as it is read and reported by ``PackedStream.drain``."""
    head = _read(reader, _HEAD.size)
    client, server, part, n_items, mode = decode_header(head)
    table = bytearray()
    labels: list[str] = []
    lengths: list[int] = []
    for _ in range(n_items):
        raw = _read(reader, 2)
        (n_lab,) = struct.unpack(">H", raw)
        entry = raw + _read(reader, n_lab + 8)
        try:
            label, n, _ = decode_item(entry, 0, labels)
        except UnicodeDecodeError as e:
            raise ConfigError(f"malformed share bundle: {e}") from e
        table += entry
        labels.append(label)
        lengths.append(n)
    pos = _HEAD.size + len(table)
    if mode != 1 or not lengths:
        if reader.size < pos:
            raise ConfigError(f"bundle of {reader.size} bytes ends inside its item table")
        return decode_bundle(head + bytes(table) + _read(reader, reader.size - pos))
    pad = -pos % 8
    sizes = [8 * packed_words(n) for n in lengths]
    if pos + pad + sum(sizes) != reader.size:
        raise ConfigError(f"bundle of {reader.size} bytes, its items need {pos + pad + sum(sizes)}")
    check_padding(_read(reader, pad), "bundle header")
    vectors: list[FieldVec | Packed61 | PackedStream] = []
    for label, n, size in zip(labels[:-1], lengths[:-1], sizes, strict=False):
        words = np.frombuffer(_read(reader, size), np.uint64)
        check_packed(words, n, f"bundle item {label!r}")
        vectors.append(unpack_words(words, n))
    vectors.append(PackedStream(reader, lengths[-1], clock))
    return ShareBundle(client, server, part, tuple(labels), tuple(lengths),
                       vectors=tuple(vectors))
