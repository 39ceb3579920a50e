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
from phalanx.mpc.packing import noncanonical, pack_words, packed_words, unpack_words
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
_HEAD = struct.Struct(">4sIIBBB")  # magic, client, server, part, items, mode
MODES = {0: "seeded", 1: "explicit", 2: "masked"}
"""The mode byte (``explicit``) of a bundle's header: what its body holds."""


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
    """Inverse of :func:`pack61` (raises ConfigError on a short buffer). Lenient: an element
    equal to p comes back as p (≡ 0); the decoders of uploads (:func:`decode_bundle`,
    :func:`masked_views`, ``stream.read_bundle``) reject such non-canonical packings."""
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
    head = _HEAD.pack(MAGIC, b.client, b.server, b.part, len(b.labels), mode)
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


def decode_header(head: bytes | memoryview) -> tuple[int, int, int, int, int]:
    """(client, server, part, n_items, mode) of a bundle header; ConfigError on a bad magic or
    an unknown mode."""
    magic, client, server, part, n_items, mode = _HEAD.unpack(head)
    if magic != MAGIC:
        raise ConfigError("bundle magic mismatch")
    if mode not in MODES:
        raise ConfigError(f"bundle mode (explicit={mode}) is not one of {sorted(MODES)}")
    return client, server, part, n_items, mode


def decode_item(raw: bytes | memoryview, pos: int, labels: list[str]) -> tuple[str, int, int]:
    """One entry of a bundle's item table at ``pos``: (label, length, next position); the
    label must be UTF-8 and not one of ``labels`` (those before it)."""
    (n_lab,) = struct.unpack_from(">H", raw, pos)
    if pos + 2 + n_lab + 8 > len(raw):
        raise ConfigError(f"bundle of {len(raw)} bytes ends inside its item table")
    label = bytes(raw[pos + 2 : pos + 2 + n_lab]).decode("utf-8")
    if label in labels:
        raise ConfigError(f"bundle label {label!r} repeats")
    (n,) = struct.unpack_from(">Q", raw, pos + 2 + n_lab)
    return label, n, pos + 2 + n_lab + 8


def check_packed(words: FieldVec, n: int, what: str) -> None:
    """ConfigError unless ``words`` is the one 61-bit packing of n field elements."""
    why = noncanonical(words, n)
    if why is not None:
        raise ConfigError(f"{what}: {why}")


def check_padding(raw: bytes | memoryview, what: str) -> None:
    """ConfigError unless the padding bytes ``raw`` are all zero."""
    if any(bytes(raw)):
        raise ConfigError(f"{what}: padding bytes are not zero")


def decode_bundle(raw: bytes | memoryview, *, packed: bool = False) -> ShareBundle:
    """Parse :func:`encode_bundle`'s output; ConfigError on a malformed bundle. With ``packed``
    explicit vectors come back as zero-copy :class:`Packed61` views of ``raw``.

    Exactly one byte string decodes to a given bundle (and re-encodes to itself): the payload
    must be consumed to its last byte, the mode known, labels UTF-8 and distinct, the padding
    zero, the packed vectors canonical (no element equal to p, no nonzero unused bit) and the
    masked key sets strictly increasing, each with strictly increasing members."""
    try:
        client, server, part, n_items, mode = decode_header(raw[:_HEAD.size])
        pos = _HEAD.size
        labels: list[str] = []
        lengths: list[int] = []
        for _ in range(n_items):
            label, n, pos = decode_item(raw, pos, labels)
            labels.append(label)
            lengths.append(n)
        if mode == 0:
            _expect_size(raw, pos + 32)
            return ShareBundle(client, server, part, tuple(labels), tuple(lengths),
                               seed=bytes(raw[pos : pos + 32]))
        if mode == 2:
            return _decode_masked_body(raw, pos, client, server, part, labels, lengths)
        pad = -pos % 8
        _expect_size(raw, pos + pad + sum(8 * packed_words(n) for n in lengths))
        check_padding(raw[pos : pos + pad], "bundle header")
        pos += pad
        vectors: list[FieldVec | Packed61] = []
        for label, n in zip(labels, lengths, strict=True):
            size = 8 * packed_words(n)
            words = np.frombuffer(raw, np.uint64, count=size // 8, offset=pos)
            check_packed(words, n, f"bundle item {label!r}")
            vectors.append(Packed61(words, n) if packed else unpack_words(words, n))
            pos += size
        return ShareBundle(client, server, part, tuple(labels), tuple(lengths),
                           vectors=tuple(vectors))
    except (struct.error, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"malformed share bundle: {e}") from e


def _expect_size(raw: bytes | memoryview, size: int) -> None:
    if len(raw) != size:
        raise ConfigError(f"bundle of {len(raw)} bytes, its items need {size}")


def _decode_masked_body(raw: bytes | memoryview, pos: int, client: int, server: int, part: int,
                        labels: list[str], lengths: list[int]) -> ShareBundle:
    """The body of a masked bundle: the blob's hash and this server's keys, one per key set
    (as ``przs.key_sets`` makes them: sets of one size, strictly increasing, their members
    strictly increasing, each holding the bundle's server)."""
    masked_hash = bytes(raw[pos : pos + 32])
    (n_keys,) = struct.unpack_from(">H", raw, pos + 32)
    pos += 34
    keys: list[tuple[KeySet, bytes]] = []
    for _ in range(n_keys):
        size = raw[pos]
        if pos + 33 + size > len(raw):
            raise ConfigError(f"bundle of {len(raw)} bytes ends inside its keys")
        members = tuple(raw[pos + 1 : pos + 1 + size])
        if any(a >= b for a, b in zip(members, members[1:], strict=False)):
            raise ConfigError(f"key set {members} is not strictly increasing")
        if server not in members:
            raise ConfigError(f"key set {members} of server {server}'s bundle lacks it")
        if keys and (len(members) != len(keys[0][0]) or not keys[-1][0] < members):
            raise ConfigError(f"key set {members} does not follow {keys[-1][0]} (same size, "
                              "increasing)")
        keys.append((members, bytes(raw[pos + 1 + size : pos + 33 + size])))
        pos += 33 + size
    _expect_size(raw, pos)
    return ShareBundle(client, server, part, tuple(labels), tuple(lengths),
                       keys=tuple(keys), masked_hash=masked_hash)


def encode_masked(vectors: list[FieldVec]) -> bytes:
    """The public blob of a masked sharing: the packed masked vectors, one after the other."""
    return b"".join(pack61(v) for v in vectors)


def decode_masked(raw: bytes | memoryview, lengths: tuple[int, ...]) -> list[FieldVec]:
    """Inverse of :func:`encode_masked` given the item lengths (ConfigError on a bad size)."""
    return [v.unpack() for v in masked_views(raw, lengths)]


def masked_views(raw: bytes | memoryview, lengths: tuple[int, ...]) -> list[Packed61]:
    """:func:`decode_masked` without unpacking: each masked vector as a :class:`Packed61` view
    of the blob (read in place by a server's streamed pass); ConfigError on a bad size or a
    non-canonical packing (an element equal to p, a nonzero unused bit)."""
    sizes = [packed_words(n) for n in lengths]
    if 8 * sum(sizes) != len(raw):
        raise ConfigError(f"masked blob has {len(raw)} bytes, expected {8 * sum(sizes)}")
    words = np.frombuffer(raw, np.uint64)
    out, pos = [], 0
    for k, (n, size) in enumerate(zip(lengths, sizes, strict=True)):
        view = words[pos:pos + size]
        check_packed(view, n, f"masked blob vector {k}")
        out.append(Packed61(view, n))
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
