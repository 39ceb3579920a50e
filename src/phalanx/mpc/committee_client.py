"""The client side of the committee protocol: share, bundle, seal, commit (protocol.md §2).

A client shares every secret with seed compression: the t servers ``seeded_servers(m, t, i)``
(rotated by the client index i, to balance the servers' work) receive one 32-byte seed per upload
part, the other m − t receive explicit share vectors. Each bundle is sealed to its server and
the client commits to the BLAKE3 hash of the sealed bytes (the content-address hash of
architecture.md; 4× faster than SHA-256 here, and every server hashes every bundle it holds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from blake3 import blake3

from phalanx.mpc.field import FieldVec
from phalanx.mpc.masked import share_masked
from phalanx.mpc.messages import (
    Packed61,
    PublicBlob,
    Scratch,
    SealedBundle,
    ShareBundle,
    as_field,
    encode_bundle,
    encode_masked,
)
from phalanx.mpc.packing import packed_words
from phalanx.mpc.prg import Prg
from phalanx.mpc.przs import key_sets
from phalanx.mpc.shamir import seeded_servers, share_packed

Observer = Callable[[memoryview], object]
"""Sees consecutive pieces that together are exactly a sealed envelope (net.envelope.Observer)."""
Sealer = Callable[[int, bytes | memoryview, bytes, Observer | None], bytes | memoryview]
"""seal(server, payload, context, observe) → sealed bytes (X25519 + HKDF + AES-256-GCM in net);
``observe`` is shown the sealed bytes piece by piece as they are written."""

BundleTamper = Callable[[list[ShareBundle]], list[ShareBundle]]


def commitment_hasher() -> blake3:
    """A fresh hasher of :func:`commitment_of` (feed it the sealed bytes in order)."""
    return blake3()


def commitment_of(sealed: bytes | memoryview) -> bytes:
    """The hash a client posts for a sealed bundle (BLAKE3-256, one thread)."""
    h = commitment_hasher()
    h.update(sealed)
    return h.digest()


def make_bundles(
    client: int,
    part: int,
    items: Mapping[str, FieldVec],
    *,
    m: int,
    t: int,
    prg: Prg,
    scratch: Scratch | None = None,
) -> list[ShareBundle]:
    """Share every item; one bundle per server (a seed for the seeded, vectors for the rest).
    With ``scratch`` the packed shares live in its reused arrays: valid until the next call
    with the same scratch (seal them first, as the client does).

    Explicit shares come out of the sharing kernel already bit-packed (:class:`Packed61`, the
    wire layout), so sealing copies them as they are (protocol.md §2).
    """
    seeded = seeded_servers(m, t, client)
    seeds = {j: prg.seed() for j in seeded}
    labels = tuple(items)
    lengths = tuple(int(v.shape[0]) for v in items.values())
    explicit: dict[int, list[FieldVec | Packed61]] = {j: [] for j in range(m) if j not in seeds}
    for label, vec in items.items():
        shape = (m - t, packed_words(int(vec.shape[0])))
        others, words = share_packed(vec, m=m, t=t, seeds=seeds, label=label,
                                     out=None if scratch is None else scratch.array(label, shape))
        for k, j in enumerate(others):
            explicit[j].append(Packed61(words[k], int(vec.shape[0])))
    bundles = []
    for j in range(m):
        if j in seeds:
            bundles.append(ShareBundle(client, j, part, labels, lengths, seed=seeds[j]))
        else:
            bundles.append(ShareBundle(client, j, part, labels, lengths,
                                       vectors=tuple(explicit[j])))
    return bundles


def make_masked_bundles(
    client: int,
    part: int,
    items: Mapping[str, FieldVec],
    *,
    m: int,
    t: int,
    prg: Prg,
) -> tuple[list[ShareBundle], PublicBlob]:
    """Masked sharing (:mod:`phalanx.mpc.masked`): keys per server and one public blob."""
    keys = {a: prg.seed() for a in key_sets(m, t)}
    masked = [share_masked(v, m=m, t=t, keys=keys, label=lab) for lab, v in items.items()]
    data = encode_masked(masked)
    blob = PublicBlob(client, part, data, commitment_of(data))
    labels = tuple(items)
    lengths = tuple(int(v.shape[0]) for v in items.values())
    bundles = [ShareBundle(client, j, part, labels, lengths,
                           keys=tuple((a, k) for a, k in keys.items() if j in a),
                           masked_hash=blob.commitment) for j in range(m)]
    return bundles, blob


def context_of(session: bytes, client: int, server: int, part: int) -> bytes:
    """Associated data binding a sealed bundle to its task and round (``session``), sender,
    recipient and part: an envelope replayed into another round, task, seat or part does not
    open."""
    return session + f"/bundle/{client}/{server}/{part}".encode()


def seal_bundles(bundles: Sequence[ShareBundle], sealer: Sealer, session: bytes,
                 scratch: Scratch | None = None) -> dict[int, SealedBundle]:
    """Encode (into ``scratch`` when given) and seal each bundle to its server; commit to the
    sealed bytes."""
    out = {}
    for b in bundles:
        hasher = commitment_hasher()  # fed by the sealer while each piece is in cache
        sealed = sealer(b.server, encode_bundle(b, scratch),
                        context_of(session, b.client, b.server, b.part), hasher.update)
        out[b.server] = SealedBundle(b.client, b.server, b.part, sealed, hasher.digest())
    return out


def tamper_share(bundles: list[ShareBundle], server: int, item: int, delta: int = 1) -> list[
        ShareBundle]:
    """A client-fault helper: make one server's share inconsistent (a new list): add ``delta`` to
    coordinate 0 of an explicit share, or flip a bit of a masked-sharing key."""
    out = []
    for b in bundles:
        if b.server == server and b.keys:
            keys = list(b.keys)
            keys[0] = (keys[0][0], bytes([keys[0][1][0] ^ 1]) + keys[0][1][1:])
            b = ShareBundle(b.client, b.server, b.part, b.labels, b.lengths, keys=tuple(keys),
                            masked_hash=b.masked_hash)
        elif b.server == server and b.seed is None:
            vecs = [as_field(v).copy() for v in b.vectors]
            vecs[item][0] = np.uint64((int(vecs[item][0]) + delta) % ((1 << 61) - 1))
            b = ShareBundle(b.client, b.server, b.part, b.labels, b.lengths, vectors=tuple(vecs))
        out.append(b)
    return out
