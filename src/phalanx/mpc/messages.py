"""Messages of the committee protocol and their wire form (protocol.md §2, §3.1).

Field vectors travel bit-packed: 64 elements of 61 bits in 61 words, so a share vector costs
61/32 ≈ 1.91 times a float32 vector of the same length. A client's bundle for one server holds,
for one upload ``part``, either a 32-byte seed (the server expands every item from it) or the
explicit share vectors of the items. The codec lives here rather than in ``net.codec`` because
``mpc`` may not import ``net`` (architecture.md); it is pure bytes in, bytes out.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from phalanx.errors import ConfigError
from phalanx.mpc.field import FieldVec
from phalanx.mpc.masked import masked_share
from phalanx.mpc.packing import pack_words, packed_words, unpack_words
from phalanx.mpc.przs import KeySet
from phalanx.mpc.shamir import expand_seeded

if TYPE_CHECKING:
    from phalanx.mpc.stream import MaskedStream, PackedStream, SeededStream, StoredVector

    VectorSource: TypeAlias = PackedStream | SeededStream | MaskedStream | StoredVector
ShareVector: TypeAlias = (
    "FieldVec | Packed61 | PackedStream | SeededStream | MaskedStream | StoredVector")
"""A share vector as a server holds it: plain, 61-bit packed, still in its upload's stream,
or stored (read again on demand: :mod:`phalanx.mpc.stream`)."""

MAGIC = b"PXB1"


class OpeningKind(Enum):
    """What an opening reveals (the positions a cheating server can attack)."""

    CONSISTENCY = "consistency"  # degree t, masked combination of a client's shares
    CHECKS = "checks"  # degree 2t, the client's check values (0 when valid), re-randomized
    AGGREGATE = "aggregate"  # the combined vector: degree t (sums) or 2t (fltrust, re-randomized)
    WEIGHT_SUM = "weight-sum"  # fltrust D = Σ w_i, degree t


def pack61(values: FieldVec) -> bytes:
    """Bit-pack field elements to 61 bits each."""
    return pack_words(values).tobytes()


@dataclass(frozen=True, slots=True)
class Packed61:
    """n field elements bit-packed as :func:`pack61` lays them out: a word array that kernels
    read directly (``checks.read61``), so a server never materializes the unpacked vector."""

    words: FieldVec
    n: int

    def __post_init__(self) -> None:
        if self.words.shape[0] < packed_words(self.n):
            raise ConfigError(f"packed vector has {self.words.shape[0]} words, "
                              f"needs {packed_words(self.n)} for n={self.n}")

    @property
    def shape(self) -> tuple[int]:
        return (self.n,)

    def unpack(self) -> FieldVec:
        return unpack_words(self.words, self.n)


def as_field(v: FieldVec | Packed61 | VectorSource) -> FieldVec:
    """A share vector as plain field elements (unpacks a :class:`Packed61`; reads a streamed
    or stored one, :mod:`phalanx.mpc.stream`)."""
    return v if isinstance(v, np.ndarray) else v.unpack()


def packed_of(values: FieldVec) -> Packed61:
    """Bit-pack field elements into a :class:`Packed61`."""
    return Packed61(pack_words(values), int(values.shape[0]))


def unpack61(raw: bytes | memoryview, n: int) -> FieldVec:
    """Inverse of :func:`pack61` (raises ConfigError on a short buffer)."""
    words = np.frombuffer(raw, np.uint64)
    if words.shape[0] < packed_words(n):
        raise ConfigError(f"packed vector has {words.shape[0]} words, needs {packed_words(n)}")
    return unpack_words(words, n)


@dataclass(frozen=True, slots=True)
class ShareBundle:
    """One client's shares for one server and one upload part (before sealing)."""

    client: int
    server: int
    part: int
    labels: tuple[str, ...]
    lengths: tuple[int, ...]
    seed: bytes | None = None
    #: explicit shares, plain or already bit-packed (the wire form is the same)
    vectors: tuple[ShareVector, ...] = ()
    #: masked sharing: this server's keys, and the hash of the public masked-vector blob
    keys: tuple[tuple[KeySet, bytes], ...] = ()
    masked_hash: bytes | None = None

    def shares(self, masked: list[FieldVec] | None = None, m: int = 0,
               out: Sequence[FieldVec] | None = None) -> list[ShareVector]:
        """The share vector of every item: expanded from the seed (into the buffers ``out``
        when given, one per item), from the keys and the public masked vectors
        (:mod:`phalanx.mpc.masked`), or as sent."""
        if self.seed is not None:
            bufs = list(out) if out is not None else [None] * len(self.labels)
            return [expand_seeded(self.seed, n, lab, buf) for lab, n, buf in
                    zip(self.labels, self.lengths, bufs, strict=True)]
        if self.masked_hash is not None:
            if masked is None or len(masked) != len(self.labels):
                raise ConfigError("a masked bundle needs its public masked vectors")
            keys = dict(self.keys)
            return [masked_share(c, keys, self.server, m=m, label=lab)
                    for c, lab in zip(masked, self.labels, strict=True)]
        return list(self.vectors)


class Scratch:
    """Reusable buffers for one owner (a client's thread encoding bundles, a server's batch
    slot expanding seeded uploads for a circuit that does not stream): fresh 7.6 MB buffers
    cost ms of page faults each here, more than the work done in them."""

    def __init__(self) -> None:
        self._buf = bytearray(0)
        self._arrays: dict[str, FieldVec] = {}

    def array(self, name: str, shape: tuple[int, ...]) -> FieldVec:
        """A reusable uint64 array of this shape (replaced when the shape changes)."""
        arr = self._arrays.get(name)
        if arr is None or arr.shape != shape:
            arr = np.empty(shape, np.uint64)
            self._arrays[name] = arr
        return arr

    def get(self, size: int) -> bytearray:
        """A buffer of at least ``size`` bytes (replaced, never resized: views may be alive)."""
        if len(self._buf) < size:
            self._buf = bytearray(size)
        return self._buf


def encode_bundle(b: ShareBundle, scratch: Scratch | None = None) -> bytes | memoryview:
    """Wire form: magic, header, item table, then a seed, the masked-sharing keys, or (after
    zero padding to a multiple of 8 bytes) the packed vectors."""
    mode = 0 if b.seed is not None else (2 if b.masked_hash is not None else 1)
    head = struct.pack(">4sIIBBB", MAGIC, b.client, b.server, b.part, len(b.labels), mode)
    table = b"".join(struct.pack(">H", len(lab)) + lab.encode() + struct.pack(">Q", n)
                     for lab, n in zip(b.labels, b.lengths, strict=True))
    body: list[bytes | memoryview]
    if b.seed is not None:
        body = [b.seed]
    elif b.masked_hash is not None:
        body = [b.masked_hash, struct.pack(">H", len(b.keys))]
        body += [bytes([len(a)]) + bytes(a) + k for a, k in b.keys]
    else:  # packed words start 8-byte aligned, so a decoder can view them in place
        table += bytes(-(len(head) + len(table)) % 8)
        body = [v.words[:packed_words(v.n)].data.cast("B") if isinstance(v, Packed61)
                else pack61(as_field(v)) for v in b.vectors]
    if scratch is None:
        return b"".join([head + table, *body])  # one copy of the (large) packed vectors
    parts = [head + table, *body]
    size = sum(len(x) for x in parts)
    out = memoryview(scratch.get(size))
    pos = 0
    for x in parts:
        out[pos:pos + len(x)] = x
        pos += len(x)
    return out[:size]


def decode_bundle(raw: bytes | memoryview, *, packed: bool = False) -> ShareBundle:
    """Parse :func:`encode_bundle`'s output; ConfigError on a malformed bundle. With ``packed``
    explicit vectors come back as zero-copy :class:`Packed61` views of ``raw``."""
    try:
        magic, client, server, part, n_items, explicit = struct.unpack_from(">4sIIBBB", raw)
        if magic != MAGIC:
            raise ConfigError("bundle magic mismatch")
        pos = struct.calcsize(">4sIIBBB")
        labels, lengths = [], []
        for _ in range(n_items):
            (n_lab,) = struct.unpack_from(">H", raw, pos)
            labels.append(bytes(raw[pos + 2 : pos + 2 + n_lab]).decode())
            (n,) = struct.unpack_from(">Q", raw, pos + 2 + n_lab)
            lengths.append(n)
            pos += 2 + n_lab + 8
        if explicit == 0:
            return ShareBundle(client, server, part, tuple(labels), tuple(lengths),
                               seed=bytes(raw[pos : pos + 32]))
        if explicit == 2:
            masked_hash = bytes(raw[pos : pos + 32])
            (n_keys,) = struct.unpack_from(">H", raw, pos + 32)
            pos += 34
            keys = []
            for _ in range(n_keys):
                size = raw[pos]
                keys.append((tuple(raw[pos + 1 : pos + 1 + size]),
                             bytes(raw[pos + 1 + size : pos + 33 + size])))
                pos += 33 + size
            return ShareBundle(client, server, part, tuple(labels), tuple(lengths),
                               keys=tuple(keys), masked_hash=masked_hash)
        view = memoryview(raw)
        pos += -pos % 8
        vectors: list[FieldVec | Packed61] = []
        for n in lengths:
            size = 8 * packed_words(n)
            if pos + size > len(raw):
                raise ConfigError(f"bundle of {len(raw)} bytes is too short for its items")
            if packed:
                words = np.frombuffer(raw, np.uint64, count=size // 8, offset=pos)
                vectors.append(Packed61(words, n))
            else:
                vectors.append(unpack61(view[pos : pos + size], n))
            pos += size
        return ShareBundle(client, server, part, tuple(labels), tuple(lengths),
                           vectors=tuple(vectors))
    except (struct.error, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"malformed share bundle: {e}") from e


def encode_masked(vectors: list[FieldVec]) -> bytes:
    """The public blob of a masked sharing: the packed masked vectors, one after the other."""
    return b"".join(pack61(v) for v in vectors)


def decode_masked(raw: bytes | memoryview, lengths: tuple[int, ...]) -> list[FieldVec]:
    """Inverse of :func:`encode_masked` given the item lengths (ConfigError on a bad size)."""
    view = memoryview(raw)
    out, pos = [], 0
    for n in lengths:
        size = 8 * packed_words(n)
        out.append(unpack61(view[pos : pos + size], n))
        pos += size
    if pos != len(raw):
        raise ConfigError(f"masked blob has {len(raw)} bytes, expected {pos}")
    return out


def masked_views(raw: bytes | memoryview, lengths: tuple[int, ...]) -> list[Packed61]:
    """:func:`decode_masked` without unpacking: each masked vector as a :class:`Packed61` view
    of the blob (read in place by a server's streamed pass); ConfigError on a bad size."""
    sizes = [packed_words(n) for n in lengths]
    if 8 * sum(sizes) != len(raw):
        raise ConfigError(f"masked blob has {len(raw)} bytes, expected {8 * sum(sizes)}")
    words = np.frombuffer(raw, np.uint64)
    out, pos = [], 0
    for n, size in zip(lengths, sizes, strict=True):
        out.append(Packed61(words[pos:pos + size], n))
        pos += size
    return out


@dataclass(frozen=True, slots=True)
class PublicBlob:
    """A client's public masked vectors for one part, and the hash it committed to."""

    client: int
    part: int
    data: bytes
    commitment: bytes


@dataclass(frozen=True, slots=True)
class SealedBundle:
    """A bundle sealed to its server, and the hash the client committed to."""

    client: int
    server: int
    part: int
    sealed: bytes | memoryview
    commitment: bytes
