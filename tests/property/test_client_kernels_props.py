"""Property tests: the client's fused kernels agree with the mod-p definitions (§1–3.2)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from phalanx.mpc import client_kernels as K
from phalanx.mpc import field as F
from phalanx.mpc.checks import norm_pass
from phalanx.mpc.fixed import encode_fixed_sq
from phalanx.mpc.messages import pack61
from phalanx.mpc.prg import Prg
from phalanx.mpc.shamir import expand_seeded, point, seeded_servers, share_packed

P = F.P
committees = st.sampled_from([(4, 1), (5, 1), (7, 2), (9, 2), (10, 3)])
signed = st.integers(-(2**60), 2**60)


@given(committees, st.integers(0, 300), st.integers(0, 9), st.binary(min_size=32, max_size=32))
def test_packed_shares_interpolate_the_secret(mt: tuple[int, int], n: int, offset: int,
                                             seed: bytes) -> None:
    m, t = mt
    z = Prg(seed).field_elements(n)
    seeds = {j: bytes([j]) + seed[1:] for j in seeded_servers(m, t, offset)}
    others, words = share_packed(z, m=m, t=t, seeds=seeds, label="p")
    seeded = sorted(seeds)
    rows = np.stack([z] + [expand_seeded(seeds[j], n, "p") for j in seeded])
    xs = [0] + [point(j) for j in seeded]
    for k, j in enumerate(others):
        ref = F.combine_rows([F.lagrange_coeffs(xs, point(j))], rows)[0]
        assert words[k].tobytes() == pack61(ref)


@given(st.lists(signed, max_size=200), st.lists(st.integers(-(2**33), 2**33), min_size=200,
                                                max_size=200))
def test_exact_witness_sums(values: list[int], g: list[int]) -> None:
    x = np.array([v % P for v in values], np.uint64)
    gv = np.array(g[: len(values)], np.int64)
    g_fe = F.from_signed(gv)
    assert K.sum_sq(x) == F.dot(x, x)
    assert K.dot_small(x, gv, g_fe) == F.dot(x, g_fe)
    pat = Prg(b"r" * 32).sign_patterns(len(values), 2)
    rows = K.projection_rows(x, pat)
    if rows is not None or len(values) == 0:
        assert rows == norm_pass(x, pat, None, None)[2]


@given(st.lists(st.floats(-1e6, 1e6, width=32), max_size=300), st.integers(0, 30),
       st.booleans())
def test_encode_sum_of_squares(values: list[float], frac_bits: int, f32: bool) -> None:
    vals = np.array(values, np.float32 if f32 else np.float64)
    x, sq = encode_fixed_sq(vals, frac_bits, Prg(b"s" * 32), lattice=2, saturate=True)
    assert sq == F.dot(x, x)
    err = np.abs(F.centered(x) / 2.0 ** (frac_bits + 1) - vals.astype(np.float64))
    assert np.all(err <= 2.0**-frac_bits)
