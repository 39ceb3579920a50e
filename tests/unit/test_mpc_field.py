"""Unit tests of the GF(2^61 − 1) kernels, the PRG and the fixed-point codec (protocol.md §1)."""

from __future__ import annotations

import numpy as np
import pytest

from phalanx.errors import ConfigError
from phalanx.mpc import field as F
from phalanx.mpc.fixed import decode_fixed, encode_fixed
from phalanx.mpc.prg import Prg, derive, expand

P = F.P


def _rand(n: int, seed: int) -> F.FieldVec:
    return Prg(bytes([seed]) * 32).field_elements(n)


def test_mulmod_matches_python_integers_including_edges() -> None:
    # Prepare
    edges = np.array([0, 1, 2, P - 1, P - 2, (1 << 32) - 1, 1 << 32, (1 << 60) + 12345],
                     np.uint64)
    a = np.concatenate([_rand(2000, 1), edges, edges[::-1]])
    b = np.concatenate([_rand(2000, 2), edges[::-1], edges])
    # Execute
    got = F.mul(a, b)
    # Assert
    assert [int(v) for v in got] == [int(x) * int(y) % P for x, y in zip(a, b, strict=True)]


def test_add_sub_dot_axpy_agree_with_python() -> None:
    a, b = _rand(500, 3), _rand(500, 4)
    pairs = list(zip(a, b, strict=True))
    assert [int(v) for v in F.add(a, b)] == [(int(x) + int(y)) % P for x, y in pairs]
    assert [int(v) for v in F.sub(a, b)] == [(int(x) - int(y)) % P for x, y in pairs]
    assert F.dot(a, b) == sum(int(x) * int(y) for x, y in zip(a, b, strict=True)) % P
    y = a.copy()
    F.axpy(y, 7, b)
    assert [int(v) for v in y] == [(int(x) + 7 * int(z)) % P for x, z in pairs]
    assert [int(v) for v in F.neg(a)] == [(-int(x)) % P for x in a]


def test_horner_and_lagrange_interpolate_a_polynomial() -> None:
    coeffs = [5, P - 3, 11, 1 << 59]
    xs = [1, 2, 3, 4]
    ys = [F.horner(coeffs, x) for x in xs]
    lam = F.lagrange_coeffs(xs, 0)
    assert sum(lm * y for lm, y in zip(lam, ys, strict=True)) % P == 5
    assert F.horner(coeffs, 2) == sum(c * 2**k for k, c in enumerate(coeffs)) % P


def test_combine_rows_is_a_matrix_product() -> None:
    rows = np.stack([_rand(100, 5), _rand(100, 6)])
    out = F.combine_rows([[2, 3], [P - 1, 1]], rows)
    want = [(int(y) - int(x)) % P for x, y in zip(*rows, strict=True)]
    assert [int(v) for v in out[1]] == want


def test_centered_and_from_signed_round_trip() -> None:
    v = np.array([-(1 << 40), -1, 0, 1, (1 << 59)], np.int64)
    assert F.centered(F.from_signed(v)).tolist() == v.tolist()


def test_inverse_of_zero_is_an_error() -> None:
    with pytest.raises(ConfigError, match="inverse"):
        F.inv(0)


def test_prg_is_deterministic_uniform_range_and_label_separated() -> None:
    a = Prg(b"k" * 32).field_elements(10_000)
    assert np.array_equal(a, Prg(b"k" * 32).field_elements(10_000))
    assert int(a.max()) < P
    assert not np.array_equal(expand(b"k" * 32, 8, "x"), expand(b"k" * 32, 8, "y"))
    # The top bit-plane is balanced: a reduction bias would show up here.
    top = (a >> np.uint64(60)) & np.uint64(1)
    assert abs(float(top.mean()) - 0.5) < 0.03
    assert derive(b"s" * 32, "a", 1) != derive(b"s" * 32, "a1")


def test_prg_writes_into_a_reused_buffer() -> None:
    buf = np.full(12, 7, np.uint64)
    got = Prg(b"q" * 32).field_elements(10, out=buf)
    assert np.array_equal(got, Prg(b"q" * 32).field_elements(10))
    with pytest.raises(ConfigError, match="n\\+2"):
        Prg(b"q" * 32).field_elements(11, out=buf)


def test_prg_elements_are_the_masked_key_stream_across_chunks() -> None:
    """Chunked generation (several chunks and a partial one) is the one-call definition:
    the low 61 bits of consecutive 64-bit words of the stream, and the stream goes on after."""
    n = 3 * (1 << 15) + 5
    prg = Prg(b"c" * 32)
    got = prg.field_elements(n)
    after = prg.random_bytes(16)
    ref = Prg(b"c" * 32)
    words = np.frombuffer(ref.random_bytes(8 * n), np.uint64) & np.uint64(P)
    assert np.array_equal(got, words)  # no word equals p for this seed (probability 2^-46)
    assert after == ref.random_bytes(16)


def test_prg_rejects_bad_seed_length() -> None:
    with pytest.raises(ConfigError, match="32"):
        Prg(b"short")


def test_fixed_point_round_trip_within_one_step() -> None:
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    enc = encode_fixed(x, 16, Prg(b"r" * 32), lattice=2)
    assert np.all(F.centered(enc) % 2 == 0)
    assert np.max(np.abs(decode_fixed(enc, 16, lattice=2) - x)) <= 2.0**-16


def test_stochastic_rounding_is_unbiased() -> None:
    x = np.full(200_000, 0.3 / 2**10, np.float64)
    enc = encode_fixed(x, 10, Prg(b"u" * 32))
    mean = float(decode_fixed(enc, 10).mean())
    assert abs(mean - x[0]) < 5 * 2**-10 / np.sqrt(x.size)
    nearest = float(decode_fixed(encode_fixed(x, 10), 10).mean())
    assert nearest == 0.0  # round-to-nearest is biased here, which is why encoding is stochastic


def test_encoding_refuses_overflow_unless_saturating() -> None:
    big = np.array([2.0**44], np.float32)
    with pytest.raises(ConfigError, match="2\\^59"):
        encode_fixed(big, 16)
    sat = encode_fixed(big, 16, saturate=True)
    assert F.centered(sat)[0] < 2**59
    with pytest.raises(ConfigError, match="NaN"):
        encode_fixed(np.array([np.nan]), 16)
