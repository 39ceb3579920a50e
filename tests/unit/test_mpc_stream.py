"""Streamed uploads (mpc/stream.py, SealedReader in net/envelope.py): the pass over an upload
read chunk by chunk equals the pass over the decoded upload; readers authenticate only after
the whole payload; malformed sizes are errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx.errors import ConfigError
from phalanx.mpc.checks import norm_pass_batch
from phalanx.mpc.committee_client import commitment_hasher, commitment_of
from phalanx.mpc.messages import ShareBundle, as_field, encode_bundle
from phalanx.mpc.prg import Prg
from phalanx.mpc.stream import CHUNK, BytesReader, PackedStream, StoredVector, read_bundle
from phalanx.net.envelope import EnvelopeError, SealedReader, open_sealed, private_key, seal


def _bundle(n: int, seed: bytes = b"v" * 32) -> ShareBundle:
    prg = Prg(seed)
    return ShareBundle(4, 2, 1, ("s1", "x"), (7, n),
                       vectors=(prg.field_elements(7), prg.field_elements(n)))


@settings(max_examples=15, deadline=None)
@given(n=st.sampled_from([1, 63, 64, 65, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 70]))
def test_streamed_bundle_reads_what_decode_reads(n: int) -> None:
    b = _bundle(n)
    body = read_bundle(BytesReader(encode_bundle(b)))
    assert (body.client, body.server, body.part, body.labels, body.lengths) == (
        4, 2, 1, ("s1", "x"), (7, n))
    assert np.array_equal(as_field(body.vectors[0]), b.vectors[0])
    stream = body.vectors[1]
    assert isinstance(stream, PackedStream)
    chunks = [as_field(stream.chunk(lo, min(n, lo + CHUNK))) for lo in range(0, n, CHUNK)]
    assert np.array_equal(np.concatenate(chunks), b.vectors[1])


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 3 * CHUNK), k=st.integers(1, 4), weight=st.integers(0, 2**61 - 2),
       groups=st.sampled_from([5, 8]))
def test_pass_over_streams_equals_the_pass_over_the_vectors(n: int, k: int, weight: int,
                                                            groups: int) -> None:
    # Prepare: k clients' bundles, a public ĝ_0 and sign patterns, two equal accumulators
    rng = np.random.default_rng(n)
    bundles = [_bundle(n, bytes([i]) * 32) for i in range(k)]
    patterns = rng.integers(0, 256, (n, groups), dtype=np.uint8)
    g0 = rng.integers(-1000, 1000, n).astype(np.int32)
    acc_plain = Prg(b"a" * 32).field_elements(n)
    acc_stream = acc_plain.copy()
    # Execute
    plain = norm_pass_batch([b.vectors[1] for b in bundles], patterns, g0, acc_plain,
                            weights=[weight] * k)
    streams = [read_bundle(BytesReader(encode_bundle(b))).vectors[1] for b in bundles]
    streamed = norm_pass_batch(streams, patterns, g0, acc_stream, weights=[weight] * k)
    # Assert
    assert streamed == plain
    assert np.array_equal(acc_stream, acc_plain)


def test_bundles_of_the_wrong_size_and_out_of_order_chunks_are_errors() -> None:
    raw = bytes(encode_bundle(_bundle(1000)))
    with pytest.raises(ConfigError, match="items need"):
        read_bundle(BytesReader(raw + b"\0" * 8))
    with pytest.raises(ConfigError):
        read_bundle(BytesReader(raw[:-8]))
    with pytest.raises(ConfigError, match="magic"):
        read_bundle(BytesReader(b"XXXX" + raw[4:]))
    stream = read_bundle(BytesReader(raw)).vectors[1]
    assert isinstance(stream, PackedStream)
    with pytest.raises(ConfigError, match="chunk"):
        stream.chunk(64, 128)  # must start where the last chunk ended
    reader = BytesReader(raw)
    read_bundle(reader)
    with pytest.raises(ConfigError, match="read to"):
        reader.verify()  # the vector was not read


def test_stored_vector_reads_again_on_demand() -> None:
    calls = []
    v = StoredVector(3, lambda: calls.append(1) or np.arange(3, dtype=np.uint64))
    assert v.shape == (3,) and not calls
    assert as_field(v).tolist() == [0, 1, 2] and calls == [1]


@pytest.mark.parametrize("aead", ["aes-256-gcm", "chacha20-poly1305"])
def test_sealed_reader_pieces_equal_open_and_verify_only_after_the_end(aead: str) -> None:
    key = private_key(b"k" * 32)
    payload = Prg(b"p" * 32).random_bytes(700_001)
    sealed = bytes(seal(payload, key.public_key(), b"e" * 32, b"ctx", aead=aead))
    hasher = commitment_hasher()
    reader = SealedReader(sealed, key, b"ctx", aead=aead, observe=hasher.update)
    out = memoryview(bytearray(400_001 + 15))
    got = bytes(reader.read_into(out, 300_000)) + bytes(reader.read_into(out, 400_001))
    reader.verify()
    assert got == payload == open_sealed(sealed, key, b"ctx", aead=aead)
    assert hasher.digest() == commitment_of(sealed)  # the observer saw exactly the envelope
    with pytest.raises(EnvelopeError, match="read"):
        SealedReader(sealed, key, b"ctx", aead=aead).verify()  # nothing read yet


def test_sealed_reader_rejects_tampering_at_verify_and_wrong_context_or_sizes() -> None:
    key = private_key(b"k" * 32)
    sealed = bytearray(seal(b"x" * 5000, key.public_key(), b"e" * 32, b"ctx"))
    sealed[2000] ^= 1
    reader = SealedReader(bytes(sealed), key, b"ctx")
    out = memoryview(bytearray(5000 + 15))
    reader.read_into(out, 5000)  # unauthenticated bytes come out; only verify decides
    with pytest.raises(EnvelopeError, match="authenticate"):
        reader.verify()
    sealed[2000] ^= 1
    reader = SealedReader(bytes(sealed), key, b"other")
    reader.read_into(out, 5000)
    with pytest.raises(EnvelopeError):
        reader.verify()
    with pytest.raises(EnvelopeError, match="read of"):
        SealedReader(bytes(sealed), key, b"ctx").read_into(out, 5001)
    with pytest.raises(ConfigError, match="needs"):
        SealedReader(bytes(sealed), key, b"ctx").read_into(memoryview(bytearray(10)), 10)
    with pytest.raises(EnvelopeError, match="short"):
        SealedReader(bytes(sealed[:40]), key, b"ctx")


@pytest.mark.parametrize("n", [1, CHUNK, 2 * CHUNK + 3])
def test_seeded_stream_is_the_seeded_expansion(n: int) -> None:
    from phalanx.mpc.shamir import expand_seeded
    from phalanx.mpc.stream import SeededStream

    stream = SeededStream(b"s" * 32, "x", n)
    got = np.concatenate([stream.chunk(lo, min(n, lo + CHUNK)).copy()
                          for lo in range(0, n, CHUNK)])
    assert np.array_equal(got, expand_seeded(b"s" * 32, n, "x"))
    assert np.array_equal(stream.unpack(), got)  # read again after the stream was consumed
    with pytest.raises(ConfigError, match="chunk"):
        stream.chunk(0, 1)


def test_seeded_stream_switches_to_the_whole_expansion_on_a_rejected_word(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A key-stream word equal to p is replaced by words after the n-th, which a chunk cannot
    know: the stream must switch to the exact expansion (simulated here: no seed is known
    whose stream hits p)."""
    import phalanx.mpc.stream as S
    from phalanx.mpc.shamir import expand_seeded

    n = 3 * CHUNK
    calls = []
    real = S.mask61

    def one_bad_in_the_second_chunk(words: np.ndarray) -> int:
        calls.append(1)
        return real(words) + (len(calls) == 2)

    monkeypatch.setattr(S, "mask61", one_bad_in_the_second_chunk)
    full = np.arange(n, dtype=np.uint64)  # stands in for the exact expansion
    monkeypatch.setattr(S, "expand_seeded", lambda seed, m, label: full)
    stream = S.SeededStream(b"s" * 32, "x", n)
    chunks = [stream.chunk(lo, lo + CHUNK).copy() for lo in range(0, n, CHUNK)]
    assert np.array_equal(chunks[0], expand_seeded(b"s" * 32, n, "x")[:CHUNK])
    assert np.array_equal(np.concatenate(chunks[1:]), full[CHUNK:])
    assert len(calls) == 2  # no key stream is generated after the switch


@pytest.mark.parametrize(("n", "m", "t"), [(1, 5, 1), (CHUNK + 64, 5, 1), (2 * CHUNK + 3, 9, 2)])
def test_masked_stream_is_the_masked_share_from_packed_or_plain_c(n: int, m: int,
                                                                 t: int) -> None:
    from phalanx.mpc.masked import masked_share
    from phalanx.mpc.messages import encode_masked, masked_views
    from phalanx.mpc.przs import key_sets
    from phalanx.mpc.stream import MaskedStream

    c = Prg(b"c" * 32).field_elements(n)
    keys = {a: bytes([k]) * 32 for k, a in enumerate(key_sets(m, t))}
    for server in (0, m - 1):
        want = masked_share(c, keys, server, m=m, label="x")
        for source in (c, masked_views(encode_masked([c]), (n,))[0]):
            stream = MaskedStream(source, keys, server, m=m, label="x")
            got = np.concatenate([stream.chunk(lo, min(n, lo + CHUNK)).copy()
                                  for lo in range(0, n, CHUNK)])
            assert np.array_equal(got, want)
            assert np.array_equal(stream.unpack(), want)


def test_masked_stream_switches_to_the_whole_share_on_a_rejected_word(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import phalanx.mpc.stream as S
    from phalanx.mpc.masked import masked_share
    from phalanx.mpc.przs import key_sets

    n = 2 * CHUNK
    c = Prg(b"c" * 32).field_elements(n)
    keys = {a: bytes([k]) * 32 for k, a in enumerate(key_sets(5, 1))}
    real, calls = S.add_masked_words, []

    def bad_on_the_fifth_key_stream(out: np.ndarray, words: np.ndarray, coef: int) -> int:
        calls.append(1)
        return int(real(out, words, coef)) + (len(calls) == 5)  # chunk 2, first key

    monkeypatch.setattr(S, "add_masked_words", bad_on_the_fifth_key_stream)
    stream = S.MaskedStream(c, keys, 2, m=5, label="x")
    got = np.concatenate([stream.chunk(lo, lo + CHUNK).copy() for lo in range(0, n, CHUNK)])
    assert np.array_equal(got, masked_share(c, keys, 2, m=5, label="x"))
    assert len(calls) == 5  # server 2 is in 4 of the 5 sets: 4 streams in chunk 1, then the switch


def test_masked_views_reject_a_blob_of_the_wrong_size() -> None:
    from phalanx.mpc.messages import encode_masked, masked_views

    blob = encode_masked([np.arange(100, dtype=np.uint64)])
    assert as_field(masked_views(blob, (100,))[0]).tolist() == list(range(100))
    with pytest.raises(ConfigError, match="masked blob"):
        masked_views(blob + b"\0" * 8, (100,))


def test_chunked_masking_equals_whole_expansions_and_falls_back_on_a_rejected_word(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import phalanx.mpc.masked as M
    from phalanx.mpc.przs import key_sets

    n = 2 * CHUNK + 7
    z = Prg(b"z" * 32).field_elements(n)
    keys = {a: bytes([k]) * 32 for k, a in enumerate(key_sets(5, 1))}
    weights = {a: M.weight(a, 5, 0) for a in keys}
    whole = M._weighted_sum_whole(z, keys, weights, "x")
    assert np.array_equal(M._weighted_sum(z, keys, weights, "x"), whole)
    real, calls = M.add_masked_words, []
    monkeypatch.setattr(M, "add_masked_words", lambda o, w, c: calls.append(1) or int(
        real(o, w, c)) + (len(calls) == 7))
    assert np.array_equal(M._weighted_sum(z, keys, weights, "x"), whole)
    assert len(calls) == 7  # stopped at the flagged word, then redone whole


@pytest.mark.parametrize("coef", [-24, -1, 1, 6])
def test_fused_masked_add_is_mask_then_small_multiple_and_counts_words_equal_to_p(
        coef: int) -> None:
    from phalanx.mpc.field import P
    from phalanx.mpc.masked import add_masked_words, add_small_multiple

    words = np.frombuffer(Prg(b"w" * 32).random_bytes(8 * 1000), np.uint64).copy()
    words[[3, 700]] = np.uint64(P) | np.uint64(7 << 61)  # masked: exactly p, twice
    base = Prg(b"b" * 32).field_elements(1000)
    want = base.copy()
    masked = words & np.uint64(P)
    add_small_multiple(want, masked, coef)
    got = base.copy()
    assert add_masked_words(got, words.copy(), coef) == 2
    assert np.array_equal(got[masked != P], want[masked != P])
