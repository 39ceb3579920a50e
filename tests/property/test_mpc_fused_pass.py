"""The fused server pass (mpc/checks.norm_pass) against big-integer definitions, on plain and
61-bit packed share vectors, across block boundaries and extreme values."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from phalanx.mpc import field as F
from phalanx.mpc.checks import INV2, norm_pass, norm_pass_batch
from phalanx.mpc.messages import packed_of
from phalanx.mpc.prg import Prg

P = F.P


def reference(x: list[int], pat: np.ndarray, g: list[int] | None) -> tuple[int, int, list[int]]:
    sq = sum(v * v for v in x) % P
    gd = sum(v * w for v, w in zip(x, g, strict=True)) % P if g is not None else 0
    total = sum(x) % P
    signs = np.unpackbits(pat, axis=1, bitorder="little")
    rows = [(total * INV2 - sum(v for v, s in zip(x, signs[:, k], strict=True) if s)) % P
            for k in range(signs.shape[1])]
    return sq, gd, rows


@given(n=st.integers(1, 2500), seed=st.binary(min_size=32, max_size=32),
       weight=st.integers(0, P - 1), extreme=st.booleans(), packed=st.booleans(),
       subtract=st.booleans(), weighted=st.booleans(), groups=st.integers(1, 8))
def test_fused_pass_equals_big_integer_definitions(n: int, seed: bytes, weight: int,
                                                   extreme: bool, packed: bool,
                                                   subtract: bool, weighted: bool,
                                                   groups: int) -> None:
    prg = Prg(seed)
    x = prg.field_elements(n)
    if extreme:  # the largest canonical values stress every limb sum
        x[::2] = np.uint64(P - 1)
    g = (np.frombuffer(prg.random_bytes(8 * n), np.int64) >> np.int64(33)).copy()
    if extreme:
        g[::3] = -(1 << 31) + 1
    pat = prg.sign_patterns(n, groups)
    acc = prg.field_elements(n)
    before = [int(v) for v in acc]
    xs = [int(v) for v in x]
    sq, gd, rows = norm_pass(packed_of(x) if packed else x, pat, g, acc,
                             weight=weight if weighted else None, subtract=subtract)
    want = reference(xs, pat, [int(v) for v in g])
    assert (sq, gd, rows) == want
    w = weight if weighted else 1
    sign = -1 if subtract else 1
    assert [int(v) for v in acc] == [(a + sign * w * v) % P for a, v in zip(before, xs,
                                                                              strict=True)]
    assert int(acc.max()) < P


@given(k=st.integers(1, 5), n=st.integers(1, 1500), seed=st.binary(min_size=32, max_size=32),
       groups=st.sampled_from([5, 8]))
def test_batch_pass_equals_single_passes_on_mixed_packed_and_plain_vectors(
        k: int, n: int, seed: bytes, groups: int) -> None:
    prg = Prg(seed)
    xs = [prg.field_elements(n) for _ in range(k)]
    mixed = [packed_of(x) if i % 2 else x for i, x in enumerate(xs)]
    g = (np.frombuffer(prg.random_bytes(8 * n), np.int64) >> np.int64(40)).copy()
    pat = prg.sign_patterns(n, groups)
    weights = [prg.field_element() if i % 3 else None for i in range(k)]
    acc = prg.field_elements(n)
    acc_single = acc.copy()
    got = norm_pass_batch(mixed, pat, g, acc, weights=weights)
    want = [norm_pass(x, pat, g, acc_single, weight=w) for x, w in zip(xs, weights, strict=True)]
    assert got == want
    assert np.array_equal(acc, acc_single)


@given(n=st.integers(1, 2100), seed=st.binary(min_size=32, max_size=32))
def test_64_rows_in_8_groups_equal_the_mod_p_definition_for_client_and_servers(
        n: int, seed: bytes) -> None:
    """protocol.md §3.2 v1.1: k = 64 rows, the kernels' full 8 groups (client and servers)."""
    from phalanx.mpc.client_kernels import projection_rows

    # Prepare: small signed coordinates (the client's exact int64 path) and any field elements
    prg = Prg(seed)
    small = F.from_signed(np.frombuffer(prg.random_bytes(8 * n), np.int64) >> np.int64(40))
    big = prg.field_elements(n)
    pat = prg.sign_patterns(n, 8)
    for x, exact_client in ((small, True), (big, False)):
        # Execute
        servers = norm_pass(packed_of(x), pat, None, None)[2]
        client = projection_rows(x, pat)
        # Assert
        want = reference([int(v) for v in x], pat, None)[2]
        assert len(want) == 64 and servers == want
        if exact_client:
            assert client == want
        else:
            assert client is None or client == want
