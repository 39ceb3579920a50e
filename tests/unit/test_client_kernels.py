"""The client's fused kernels equal the generic mod-p definitions (protocol.md §1–3.2)."""

from __future__ import annotations

import numpy as np
import pytest

from phalanx.mpc import client_kernels as K
from phalanx.mpc import field as F
from phalanx.mpc import shamir
from phalanx.mpc.checks import bits_of, norm_pass
from phalanx.mpc.committee_client import make_bundles, tamper_share
from phalanx.mpc.fixed import OVERFLOW_BITS, encode_fixed, encode_fixed_sq
from phalanx.mpc.messages import Packed61, decode_bundle, encode_bundle, pack61, packed_words
from phalanx.mpc.packing import unpack_words
from phalanx.mpc.prg import Prg, derive
from phalanx.mpc.shamir import expand_seeded, point, seeded_servers, share_packed, share_seeded
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.secure.backend import SecureParams, make_circuit
from phalanx.rules.secure.fltrust import FLTrustCircuit

P = F.P


def _old_encode(values: np.ndarray, frac_bits: int, prg: Prg | None, lattice: int,
                saturate: bool) -> np.ndarray:
    """The previous encoder, in plain Python: the definition the fast path must match."""
    vals = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    words = (np.frombuffer(prg.random_bytes(8 * vals.size), np.uint64) if prg is not None
             else None)
    limit = float(2**OVERFLOW_BITS) / lattice
    inner = limit * (1.0 - 2.0**-52)
    out = np.zeros(vals.size, np.uint64)
    for j, x in enumerate(vals):
        v = float(x) * 2.0**frac_bits
        if not abs(v) < limit:
            assert saturate
            v = min(max(v, -inner), inner)
        if words is not None:
            low = np.floor(v)
            u = float(int(words[j]) >> 11) * (1.0 / 9007199254740992.0)
            r = int(low) + (1 if u < v - low else 0)
        else:
            r = int(np.rint(v))
        out[j] = (r * lattice) % P
    return out


def _signed_fe(values: list[int]) -> np.ndarray:
    return np.array([v % P for v in values], np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stochastic", [True, False])
def test_encode_matches_the_reference_incl_saturation(dtype: type, stochastic: bool) -> None:
    rng = np.random.default_rng(3)
    n = 3 * K.CHUNK // 2 + 7  # two chunks, the last one partial
    vals = (rng.standard_normal(n) * 50).astype(dtype)
    vals[:4] = [2.0**45, -(2.0**45), 3e38 if dtype == np.float32 else 1e300, -7.25]
    seed = b"e" * 32
    ref = _old_encode(vals, 16, Prg(seed) if stochastic else None, 2, True)
    prg = Prg(seed) if stochastic else None
    x, sq = encode_fixed_sq(vals, 16, prg, lattice=2, saturate=True)
    assert np.array_equal(x, ref)
    assert sq == F.dot(ref, ref)
    assert F.centered(x[:2]).tolist() == [2**59 - 2**7, -(2**59 - 2**7)]  # clamped below 2^59
    if prg is not None:  # the stream advanced by exactly 8n bytes
        tail = Prg(seed)
        tail.random_bytes(8 * n)
        assert prg.random_bytes(16) == tail.random_bytes(16)


def test_encode_fixed_errors_and_shapes_unchanged() -> None:
    with pytest.raises(Exception, match="NaN or inf"):
        encode_fixed(np.array([1.0, np.inf], np.float32), 16, Prg(b"q" * 32))
    with pytest.raises(Exception, match="reaches 2\\^59"):
        encode_fixed(np.array([2.0**50]), 16)
    grid = np.arange(12, dtype=np.int64).reshape(3, 4)  # ints and 2-D input are flattened
    assert np.array_equal(encode_fixed(grid, 4), np.arange(12, dtype=np.uint64) * 16)
    assert encode_fixed(np.zeros(0, np.float32), 8, Prg(b"q" * 32)).shape == (0,)


def test_words_into_in_chunks_is_the_same_stream() -> None:
    a, b = Prg(b"w" * 32), Prg(b"w" * 32)
    buf = np.empty(1002, np.uint64)
    got = np.concatenate([a.words_into(buf, k).copy() for k in (1, 999, 17)])
    assert np.array_equal(got, np.frombuffer(b.random_bytes(8 * 1017), np.uint64))


def _witness_inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    small = _signed_fe(list(rng.integers(-(2**20), 2**20, 5000)))
    edge = small.copy()
    edge[[0, 1, 2]] = _signed_fe([2**27, -(2**27) + 1, 2**31])  # block and int bounds
    edge[700:703] = _signed_fe([2**59, -(2**59), 2**31 - 1])  # saturated values
    wrapped = small.copy()
    wrapped[:3] = [P // 3 + 12345, P // 5 + 6789, P - 1]  # wrap-around coordinates
    uniform = Prg(b"u" * 32).field_elements(3000)
    return [small, edge, wrapped, uniform, small[:0], small[:1]]


@pytest.mark.parametrize("case", range(6))
def test_sum_sq_and_dot_small_equal_field_dots(case: int) -> None:
    x = _witness_inputs()[case]
    rng = np.random.default_rng(case)
    g = rng.integers(-(2**24), 2**24, x.shape[0])
    if x.shape[0] > 10:
        g[5] = 2**40  # a large public coefficient takes the exact path
        g[6] = -(2**31)
    g_fe = F.from_signed(g)
    assert K.sum_sq(x) == F.dot(x, x)
    assert K.dot_small(x, g, g_fe) == F.dot(x, g_fe)


def test_witness_sums_on_a_wrap_around_vector() -> None:
    rule = make_rule("fltrust", nu=1.0)
    d = 4096
    rng = np.random.default_rng(8)
    ref = rng.standard_normal(d).astype(np.float32)
    ctx = RuleContext(dim=d, reference=ref)
    c = make_circuit(rule, ctx, SecureParams(), 10)
    assert isinstance(c, FLTrustCircuit)
    x = c.encode(rule.prepare(ref + rng.standard_normal(d).astype(np.float32), ctx), Prg(b"c" * 32))
    for vec in (x, c.wrap_around(x)):
        assert K.sum_sq(vec) == F.dot(vec, vec)
        assert K.dot_small(vec, c.g, c.g_fe) == F.dot(vec, c.g_fe)
        secrets = c.witness(vec, Prg(b"w" * 32))
        _, _, rows = norm_pass(vec, c.patterns(b"k" * 32), None, None)
        expect = bits_of([(r + c.T) % P for r in rows], c.k_row)
        assert np.array_equal(c.client_response(secrets, b"k" * 32), expect)
    assert K.projection_rows(c.wrap_around(x), c.patterns(b"k" * 32)) is None  # falls back


@pytest.mark.parametrize("groups", [1, 3, 5, 8])
def test_projection_rows_equal_norm_pass(groups: int) -> None:
    rng = np.random.default_rng(groups)
    x = _signed_fe(list(rng.integers(-(2**38), 2**38, 3000)))
    pat = Prg(b"p" * 32).sign_patterns(3000, groups)
    assert K.projection_rows(x, pat) == norm_pass(x, pat, None, None)[2]


def test_bits_of_equals_the_bit_by_bit_definition() -> None:
    vals = [0, 1, P - 1, 2**40 + 5, 12345]
    for width in (1, 7, 20, 61, 63, 64, 70):
        want = [((v % (1 << width)) >> k) & 1 for v in vals for k in range(width)]
        assert bits_of(vals, width).tolist() == want
        assert bits_of(vals, width).dtype == np.uint64
    assert bits_of([], 5).shape == (0,)


def _reference_explicit(z: np.ndarray, m: int, t: int, seeds: dict[int, bytes],
                        label: str) -> dict[int, np.ndarray]:
    seeded = sorted(seeds)
    rows = np.stack([z] + [expand_seeded(seeds[j], z.shape[0], label) for j in seeded])
    xs = [0] + [point(j) for j in seeded]
    others = [j for j in range(m) if j not in seeds]
    out = F.combine_rows([F.lagrange_coeffs(xs, point(j)) for j in others], rows)
    return {j: out[k] for k, j in enumerate(others)}


@pytest.mark.parametrize("mt", [(4, 1), (5, 1), (9, 2), (10, 3)])
@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, K.CHUNK + 3])
def test_share_packed_equals_lagrange_and_pack61(mt: tuple[int, int], n: int) -> None:
    m, t = mt
    z = Prg(b"z" * 32).field_elements(n)
    for offset in range(m):
        seeds = {j: derive(b"s" * 32, j) for j in seeded_servers(m, t, offset)}
        ref = _reference_explicit(z, m, t, seeds, "x")
        others, words = share_packed(z, m=m, t=t, seeds=seeds, label="x")
        assert others == sorted(ref)
        assert words.shape == (m - t, packed_words(n))
        for k, j in enumerate(others):
            assert words[k].tobytes() == pack61(ref[j])
        plain = share_seeded(z, m=m, t=t, seeds=seeds, label="x")
        assert all(np.array_equal(plain.explicit[j], ref[j]) for j in ref)
        if n > K.CHUNK:
            break


def test_share_packed_redoes_an_item_when_the_prg_rejects(monkeypatch: pytest.MonkeyPatch) -> None:
    """A raw word equal to p (probability 2^-61) is rejected by the PRG: the item is redone
    from the exact expansion (forced here by reporting one bad word)."""
    kernel = K.share_chunk
    calls = []

    def one_bad(*args: object) -> int:
        calls.append(1)
        return kernel(*args) + (1 if len(calls) == 1 else 0)  # type: ignore[arg-type]

    monkeypatch.setattr(shamir, "share_chunk", one_bad)
    z = Prg(b"z" * 32).field_elements(200)
    seeds = {2: b"k" * 32}
    _, words = share_packed(z, m=5, t=1, seeds=seeds, label="x")
    assert len(calls) == 2
    ref = _reference_explicit(z, 5, 1, seeds, "x")
    assert [words[k].tobytes() for k in range(4)] == [pack61(ref[j]) for j in sorted(ref)]


def test_make_bundles_sends_packed_shares_with_the_same_wire_bytes() -> None:
    z = Prg(b"z" * 32).field_elements(1000)
    s1 = Prg(b"y" * 32).field_elements(37)
    bundles = make_bundles(3, 1, {"x": z, "s1": s1}, m=5, t=1, prg=Prg(b"b" * 32))
    prg = Prg(b"b" * 32)
    seeds = {j: prg.seed() for j in seeded_servers(5, 1, 3)}
    refs = {lab: _reference_explicit(v, 5, 1, seeds, lab) for lab, v in (("x", z), ("s1", s1))}
    for b in bundles:
        if b.seed is not None:
            assert b.seed == seeds[b.server]
            continue
        assert all(isinstance(v, Packed61) for v in b.vectors)
        back = decode_bundle(encode_bundle(b))
        assert np.array_equal(back.vectors[0], refs["x"][b.server])
        assert np.array_equal(back.vectors[1], refs["s1"][b.server])
    target = next(b.server for b in bundles if b.seed is None)
    bad = tamper_share(bundles, target, 0)
    got = decode_bundle(encode_bundle(bad[target]))
    assert int(got.vectors[0][0]) == (int(refs["x"][target][0]) + 1) % P


def test_unpack_words_matches_messages() -> None:
    assert [packed_words(n) for n in (0, 1, 63, 64, 65)] == [1, 2, 62, 62, 63]
    words = share_packed(np.arange(130, dtype=np.uint64), m=4, t=1, seeds={0: b"a" * 32},
                         label="v")[1]
    assert np.array_equal(unpack_words(words[0], 130),
                          shamir.share_seeded(np.arange(130, dtype=np.uint64), m=4, t=1,
                                              seeds={0: b"a" * 32}, label="v").explicit[1])
