"""One valid encoding per upload (protocol.md §3.2 v1.1, issue 9).

A client that could append, drop or vary bytes of a bundle without changing what it shares would
get fresh commitments for free (grinding the coin) and servers that disagree on what was
uploaded. Every decoder of uploads — ``messages.decode_bundle``, ``stream.read_bundle`` (with
``PackedStream.drain`` for the streamed vector) and the masked blob's ``masked_views`` /
``decode_masked`` — consumes its payload exactly and accepts only the canonical form; the
committee turns the ConfigError into ``Reject.BAD_BUNDLE``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phalanx.mpc.committee_client as committee_client
from phalanx.errors import ConfigError, Reject
from phalanx.mpc.committee_client import make_bundles, make_masked_bundles
from phalanx.mpc.messages import (
    ShareBundle,
    as_field,
    decode_bundle,
    decode_masked,
    encode_bundle,
    encode_masked,
    masked_views,
)
from phalanx.mpc.packing import packed_words
from phalanx.mpc.prg import Prg
from phalanx.mpc.stream import CHUNK, BytesReader, PackedStream, read_bundle
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.secure import FramingEnvelope, SecureBackend, SecureParams

P = (1 << 61) - 1
KINDS = ("seeded", "explicit", "masked", "explicit-part2")


def _bundle(kind: str, n: int, seed: int) -> bytes:
    """A valid encoded bundle of each kind, as a client makes it (server 0 or 1 of (5, 1))."""
    prg = Prg(bytes([seed % 256]) * 32)
    items = {"s1": prg.field_elements(3 + seed % 5), "x": prg.field_elements(n)}
    if kind == "masked":
        bundles, _ = make_masked_bundles(7, 1, items, m=5, t=1, prg=prg)
        return bytes(encode_bundle(bundles[1]))
    if kind == "explicit-part2":
        items = {"s2": items["s1"]}
    bundles = make_bundles(7, 1 if kind != "explicit-part2" else 2, items, m=5, t=1, prg=prg)
    seeded = 7 % 5  # client 7's seeded server for t = 1 (shamir.seeded_servers)
    return bytes(encode_bundle(bundles[seeded if kind == "seeded" else (seeded + 1) % 5]))


def _read_streamed(raw: bytes) -> ShareBundle:
    """``read_bundle`` as a server does it: the streamed vector read by the pass, chunk by
    chunk, then drained (where its canonical form is checked) and the reader verified; the
    bundle comes back with the values the pass read."""
    reader = BytesReader(raw)
    body = read_bundle(reader)
    vectors = []
    for v in body.vectors:
        if isinstance(v, PackedStream):
            chunks = [as_field(v.chunk(lo, min(v.n, lo + CHUNK))).copy()
                      for lo in range(0, v.n, CHUNK)]
            v.drain()
            v = np.concatenate(chunks) if chunks else np.zeros(0, np.uint64)
        vectors.append(v)
    reader.verify()
    return ShareBundle(body.client, body.server, body.part, body.labels, body.lengths,
                       body.seed, tuple(vectors), body.keys, body.masked_hash)


DECODERS: list[Callable[[bytes], Any]] = [decode_bundle,
                                          lambda raw: decode_bundle(raw, packed=True),
                                          _read_streamed]


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), n=st.integers(0, 300), seed=st.integers(0, 255),
       extra=st.binary(min_size=1, max_size=9))
def test_any_bytes_appended_to_a_valid_bundle_are_rejected(kind: str, n: int, seed: int,
                                                           extra: bytes) -> None:
    raw = _bundle(kind, n, seed)
    for decode in DECODERS:
        assert encode_bundle(decode(raw)) == raw  # canonical: decoding then encoding
        with pytest.raises(ConfigError):
            decode(raw + extra)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), n=st.integers(0, 300), seed=st.integers(0, 255),
       where=st.floats(0, 1, exclude_max=True), count=st.integers(1, 9))
def test_any_bytes_removed_from_a_valid_bundle_are_rejected(kind: str, n: int, seed: int,
                                                            where: float, count: int) -> None:
    raw = _bundle(kind, n, seed)
    at = int(where * len(raw))
    for cut in (raw[:at] + raw[at + count:], raw[:-count]):
        for decode in DECODERS:
            with pytest.raises(ConfigError):
                decode(cut)


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from(KINDS), n=st.integers(0, 200), seed=st.integers(0, 255),
       where=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_a_changed_byte_either_is_rejected_or_decodes_to_a_different_bundle(
        kind: str, n: int, seed: int, where: float, mask: int) -> None:
    """Canonical: whatever decodes re-encodes to exactly its own bytes, so no two byte strings
    decode to the same bundle."""
    raw = bytearray(_bundle(kind, n, seed))
    raw[int(where * len(raw))] ^= mask
    for decode in DECODERS:
        try:
            body = decode(bytes(raw))
        except ConfigError:
            continue
        assert encode_bundle(body) == bytes(raw)


def _explicit_raw(n: int) -> tuple[bytes, int]:
    """An explicit bundle with one vector of n elements, and the byte offset of its words."""
    prg = Prg(b"e" * 32)
    raw = bytes(encode_bundle(ShareBundle(1, 2, 1, ("x",), (n,),
                                          vectors=(prg.field_elements(n),))))
    return raw, len(raw) - 8 * packed_words(n)


def _set_element(raw: bytes, offset: int, i: int, value: int) -> bytes:
    """Replace packed element i (61 bits) of the words at ``offset`` by ``value``."""
    n_words = (len(raw) - offset) // 8
    words = [int(w) for w in np.frombuffer(raw, np.uint64, count=n_words, offset=offset)]
    big = sum(w << (64 * k) for k, w in enumerate(words))
    big = (big & ~(P << (61 * i))) | (value << (61 * i))
    out = [(big >> (64 * k)) & ((1 << 64) - 1) for k in range(n_words)]
    return raw[:offset] + np.array(out, np.uint64).tobytes()


@pytest.mark.parametrize("n", [1, 63, 64, 65, 1000, CHUNK + 70])
def test_a_packed_element_equal_to_p_is_rejected_by_every_decoder(n: int) -> None:
    raw, offset = _explicit_raw(n)
    for i in sorted({0, n // 2, n - 1}):
        bad = _set_element(raw, offset, i, P)  # ≡ 0: a second encoding of the field element 0
        assert decode_bundle(_set_element(raw, offset, i, 0)).vectors[0][i] == 0
        for decode in DECODERS:
            with pytest.raises(ConfigError, match="equals p"):
                decode(bad)


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 1000, CHUNK + 70])
def test_nonzero_unused_bits_after_the_last_element_are_rejected(n: int) -> None:
    raw, offset = _explicit_raw(n)
    words = np.frombuffer(raw, np.uint64, offset=offset).copy()
    for bit in sorted({61 * n, 61 * n + 2, 64 * words.shape[0] - 1}):
        w = words.copy()
        w[bit // 64] |= np.uint64(1) << np.uint64(bit % 64)
        for decode in DECODERS:
            with pytest.raises(ConfigError, match="padding"):
                decode(raw[:offset] + w.tobytes())


def test_nonzero_header_padding_unknown_modes_bad_and_repeated_labels_are_rejected() -> None:
    raw, offset = _explicit_raw(10)
    head = 15 + 2 + 1 + 8  # header, one label "x"
    assert offset > head  # zero padding to a multiple of 8 before the words
    cases = {
        "padding": raw[:head] + b"\x01" + raw[head + 1:],
        "mode": raw[:14] + b"\x03" + raw[15:],
        "utf-8": raw[:17] + b"\xff" + raw[18:],
    }
    for match, bad in cases.items():
        for decode in DECODERS:
            with pytest.raises(ConfigError, match=match):
                decode(bad)
    twice = bytes(encode_bundle(ShareBundle(1, 2, 1, ("x", "x"), (3, 3),
                                            vectors=(np.zeros(3, np.uint64),) * 2)))
    for decode in DECODERS:
        with pytest.raises(ConfigError, match="repeats"):
            decode(twice)


def test_masked_key_sets_must_be_canonical() -> None:
    prg = Prg(b"k" * 32)
    keys = ((0, 1, 2, 3), prg.seed()), ((0, 1, 2, 4), prg.seed())
    ok = ShareBundle(1, 0, 1, ("x",), (4,), keys=keys, masked_hash=b"h" * 32)
    assert decode_bundle(encode_bundle(ok)) == ok
    for bad_keys in (keys[::-1], (keys[0], keys[0]), (((1, 0, 2, 3), keys[0][1]),),
                     (keys[0], ((0, 1, 2, 3, 4), keys[1][1])), (((1, 2, 3, 4), keys[0][1]),)):
        bad = ShareBundle(1, 0, 1, ("x",), (4,), keys=bad_keys, masked_hash=b"h" * 32)
        with pytest.raises(ConfigError, match="key set"):
            decode_bundle(encode_bundle(bad))


@pytest.mark.parametrize("n", [1, 64, 1000])
def test_masked_blobs_are_canonical_and_exact(n: int) -> None:
    vecs = [Prg(b"m" * 32).field_elements(n), Prg(b"M" * 32).field_elements(7)]
    blob = encode_masked(vecs)
    lengths = (n, 7)
    assert encode_masked(decode_masked(blob, lengths)) == blob
    bad_p = _set_element(blob[:8 * packed_words(n)], 0, n - 1, P) + blob[8 * packed_words(n):]
    tail = bytearray(blob)
    tail[8 * packed_words(n) - 1] |= 0x80  # the spare word of the first vector
    for decode in (decode_masked, masked_views):
        for bad in (blob + b"\0", blob[:-1], bad_p, bytes(tail)):
            with pytest.raises(ConfigError, match="masked blob"):
                decode(bad, lengths)


# -- through the committee: the client is rejected with BAD_BUNDLE, everyone else aggregated --
D, N = 300, 5


def _run_with(monkeypatch: pytest.MonkeyPatch, sharing: str, target: tuple[int, int, int],
              change: Callable[[bytes], bytes]) -> Any:
    """One round in which client 2's bundle for (server, part) = target[1:] is ``change``d
    before sealing (so its commitment matches the bytes: only decoding can reject it)."""
    encode = committee_client.encode_bundle

    def changed(b: ShareBundle, scratch: Any = None) -> bytes | memoryview:
        out = encode(b, scratch)
        return change(bytes(out)) if (b.client, b.server, b.part) == target else out

    monkeypatch.setattr(committee_client, "encode_bundle", changed)
    rng = np.random.default_rng(0)
    rule = make_rule("fltrust")
    ctx = RuleContext(dim=D, reference=rng.standard_normal(D).astype(np.float32))
    inputs = [rule.prepare(rng.standard_normal(D).astype(np.float32), ctx) for _ in range(N)]
    return SecureBackend(SecureParams(sharing=sharing), envelope=FramingEnvelope).aggregate(
        rule, inputs, ctx, seed=b"B" * 32)


def _set_first_element_to_p(raw: bytes) -> bytes:
    """The first element of the bundle's last vector (the streamed one, in part 1) set to p."""
    last = int(decode_bundle(raw).lengths[-1])
    return _set_element(raw, len(raw) - 8 * packed_words(last), 0, P)


@pytest.mark.parametrize(("sharing", "target", "change"), [
    ("seeded", (2, 2, 1), lambda raw: raw + b"\0"),  # the seeded server's part 1 (a seed)
    ("seeded", (2, 0, 2), lambda raw: raw + b"\0" * 8),  # an explicit part 2
    ("seeded", (2, 0, 2), _set_first_element_to_p),  # part 2's first scalar = p
    ("masked", (2, 3, 1), lambda raw: raw + b"\0"),  # a masked bundle's keys
])
def test_a_client_whose_bundle_is_not_the_canonical_encoding_is_rejected(
        monkeypatch: pytest.MonkeyPatch, sharing: str, target: tuple[int, int, int],
        change: Callable[[bytes], bytes]) -> None:
    res = _run_with(monkeypatch, sharing, target, change)
    assert [(r.index, r.reason) for r in res.aggregate.rejected] == [(2, Reject.BAD_BUNDLE)]
    assert res.aggregate.accepted == (0, 1, 3, 4)
    assert res.cheating_servers == () and res.aborted is None


def test_a_streamed_vector_with_an_element_equal_to_p_is_rejected_after_the_pass(
        monkeypatch: pytest.MonkeyPatch) -> None:
    res = _run_with(monkeypatch, "seeded", (2, 0, 1), _set_first_element_to_p)
    assert [(r.index, r.reason) for r in res.aggregate.rejected] == [(2, Reject.BAD_BUNDLE)]
