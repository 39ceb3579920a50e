"""Unit tests of the fused check kernels, the 61-bit packing and the bundle codec."""

from __future__ import annotations

import numpy as np
import pytest

from phalanx.errors import ConfigError
from phalanx.mpc import field as F
from phalanx.mpc.checks import bits_of, norm_pass, recompose, sign_pass
from phalanx.mpc.messages import ShareBundle, decode_bundle, encode_bundle, pack61, unpack61
from phalanx.mpc.prg import Prg


def test_projection_rows_match_signed_sums_on_small_signed_vectors() -> None:
    # Regression: an int64 scalar reaching a uint64 kernel was promoted to float64 and rows were
    # off by 8 (2^64 mod p) whenever the sum wrapped.
    rng = np.random.default_rng(1)
    for trial in range(30):
        y = rng.integers(-300, 300, 257)
        pat = Prg(bytes([trial]) * 32).sign_patterns(257, 5)
        sq, _, rows = norm_pass(F.from_signed(2 * y), pat, None, None)
        signs = np.unpackbits(pat, axis=1, bitorder="little")
        want = [int(np.where(signs[:, k] == 1, -y, y).sum()) for k in range(40)]
        assert [F.centered_int(r) for r in rows] == want
        assert sq == int((4 * y * y).sum())


def test_norm_pass_dot_and_weighted_accumulation_and_rollback() -> None:
    x = Prg(b"x" * 32).field_elements(300)
    g = F.from_signed(np.arange(-150, 150))
    pat = Prg(b"p" * 32).sign_patterns(300, 1)
    acc = np.zeros(300, np.uint64)
    sq, gd, _ = norm_pass(x, pat, np.arange(-150, 150), acc, weight=5)
    assert sq == F.dot(x, x) and gd == F.dot(x, g)
    assert np.array_equal(acc, F.scale(x, 5))
    norm_pass(x, pat, None, acc, weight=5, subtract=True)
    assert not acc.any()


def test_sign_pass_is_zero_exactly_on_valid_sign_bits() -> None:
    rho, sigma = Prg(b"r" * 32).field_elements(4), Prg(b"s" * 32).field_elements(4)
    a = np.array([1, 0, 0, 0], np.uint64)
    b = np.array([0, 1, 0, 0], np.uint64)
    acc = np.zeros(4, np.uint64)
    quad, lin_a, lin_b = sign_pass(a, b, rho, sigma, acc)
    assert quad == 0 and lin_a == int(rho[0]) and lin_b == int(sigma[1])
    assert F.centered(acc).tolist() == [1, -1, 0, 0]
    both = np.array([1, 1, 0, 0], np.uint64)  # a = b = 1 at coordinate 0: not a sign
    assert sign_pass(both, both.copy(), rho, sigma, None)[0] != 0


def test_bits_round_trip_and_out_of_range_values_do_not_recompose() -> None:
    assert recompose(bits_of([0, 5, 255], 8), 8) == [0, 5, 255]
    assert recompose(bits_of([300], 8), 8) != [300]


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 1000])
def test_pack61_round_trip(n: int) -> None:
    v = Prg(b"v" * 32).field_elements(n)
    raw = pack61(v)
    assert np.array_equal(unpack61(raw, n), v)
    assert len(raw) <= 8 * ((61 * n + 63) // 64 + 1)


def test_bundle_codec_round_trips_and_rejects_garbage() -> None:
    b = ShareBundle(3, 1, 1, ("x", "s1"), (10, 3),
                    vectors=(Prg(b"a" * 32).field_elements(10), Prg(b"b" * 32).field_elements(3)))
    back = decode_bundle(encode_bundle(b))
    assert (back.client, back.server, back.part, back.labels) == (3, 1, 1, ("x", "s1"))
    assert all(np.array_equal(u, v) for u, v in zip(back.vectors, b.vectors, strict=True))
    seeded = ShareBundle(3, 0, 1, ("x",), (10,), seed=b"z" * 32)
    assert np.array_equal(decode_bundle(encode_bundle(seeded)).shares()[0], seeded.shares()[0])
    with pytest.raises(ConfigError):
        decode_bundle(b"nonsense")


def test_bundle_encoded_into_a_reused_scratch_buffer_equals_the_fresh_encoding() -> None:
    from phalanx.mpc.messages import Scratch, packed_of

    x = Prg(b"v" * 32).field_elements(1000)
    bundles = [ShareBundle(1, 2, 1, ("x", "s1"), (1000, 3),
                           vectors=(packed_of(x), np.arange(3, dtype=np.uint64))),
               ShareBundle(1, 3, 1, ("x",), (10,), vectors=(x[:10],))]
    scratch = Scratch()
    for b in bundles:  # the second, smaller bundle reuses the first one's buffer
        view = encode_bundle(b, scratch)
        assert bytes(view) == encode_bundle(b)
        back = decode_bundle(view, packed=True)
        assert np.array_equal(back.shares()[0].unpack(), b.vectors[0].unpack()
                              if hasattr(b.vectors[0], "unpack") else b.vectors[0])
