"""Property tests of Shamir sharing, RS decoding and PRZS (protocol.md §2, §3.1)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from phalanx.mpc import field as F
from phalanx.mpc.masked import masked_share, share_masked
from phalanx.mpc.prg import Prg, derive
from phalanx.mpc.przs import key_sets, zero_share
from phalanx.mpc.rs import decode, is_codeword
from phalanx.mpc.shamir import SeededSharing, expand_seeded, reconstruct, share, share_seeded

P = F.P
committees = st.sampled_from([(4, 1), (5, 1), (7, 2), (9, 2), (10, 3)])
seeds = st.binary(min_size=32, max_size=32)


def _full(s: SeededSharing, m: int, n: int, label: str) -> F.FieldVec:
    return np.stack([s.explicit[j] if j in s.explicit else expand_seeded(s.seeds[j], n, label)
                     for j in range(m)])


@given(committees, seeds, st.data())
def test_any_t_plus_1_shares_reconstruct(
    mt: tuple[int, int], seed: bytes, data: st.DataObject
) -> None:
    m, t = mt
    secret = Prg(seed).field_elements(5)
    subset = data.draw(st.lists(st.integers(0, m - 1), min_size=t + 1, max_size=m, unique=True))
    seeded = data.draw(st.lists(st.integers(0, m - 1), min_size=t, max_size=t, unique=True))
    for shares in (share(secret, m=m, t=t, prg=Prg(seed[::-1])),
                   _full(share_seeded(secret, m=m, t=t, seeds={j: seed for j in seeded},
                                      label="v"), m, 5, "v")):
        assert np.array_equal(reconstruct(subset, shares[subset], degree=t), secret)


@given(committees, seeds, st.data())
def test_masked_sharing_is_a_degree_t_sharing(mt: tuple[int, int], seed: bytes,
                                              data: st.DataObject) -> None:
    m, t = mt
    secret = Prg(seed).field_elements(4)
    keys = {a: derive(seed, *a) for a in key_sets(m, t)}
    c = share_masked(secret, m=m, t=t, keys=keys, label="v")
    shares = np.stack([masked_share(c, {a: k for a, k in keys.items() if j in a}, j, m=m,
                                    label="v") for j in range(m)])
    assert is_codeword(list(range(m)), shares, t)
    subset = data.draw(st.lists(st.integers(0, m - 1), min_size=t + 1, max_size=m, unique=True))
    assert np.array_equal(reconstruct(subset, shares[subset], degree=t), secret)


def test_masked_vector_and_t_shares_are_independent_of_the_secret() -> None:
    """What t = 1 server sees (c and its share) does not depend on the secret (χ² < 50)."""
    n, m, t = 20_000, 5, 1
    views = []
    for value in (0, 1 << 40):
        keys = {a: derive(bytes([value % 251]) * 32, *a) for a in key_sets(m, t)}
        c = share_masked(np.full(n, value, np.uint64), m=m, t=t, keys=keys, label="z")
        own = masked_share(c, {a: k for a, k in keys.items() if 2 in a}, 2, m=m, label="z")
        views.append(((c & np.uint64(3)) * 4 + (own & np.uint64(3))).astype(np.int64))
    assert _chi2_two_sample(views[0], views[1], 16) < 50


@given(committees, seeds)
def test_sharing_is_linear(mt: tuple[int, int], seed: bytes) -> None:
    m, t = mt
    a, b = Prg(seed).field_elements(4), Prg(seed[::-1]).field_elements(4)
    sa = share(a, m=m, t=t, prg=Prg(b"a" * 32))
    sb = share(b, m=m, t=t, prg=Prg(b"b" * 32))
    summed = np.stack([F.add(x, y) for x, y in zip(sa, sb, strict=True)])
    assert np.array_equal(reconstruct(list(range(m)), summed, degree=t), F.add(a, b))
    scaled = np.stack([F.scale(x, 3) for x in sa])
    assert np.array_equal(reconstruct(list(range(m)), scaled, degree=t), F.scale(a, 3))


def _chi2_two_sample(x: np.ndarray, y: np.ndarray, bins: int) -> float:
    cx = np.bincount(x, minlength=bins).astype(float)
    cy = np.bincount(y, minlength=bins).astype(float)
    mask = (cx + cy) > 0
    return float((((cx - cy) ** 2)[mask] / (cx + cy)[mask]).sum())


def _low_bits(shares: F.FieldVec, servers: list[int]) -> np.ndarray:
    """A joint 4-bit statistic of the given servers' shares (2 bits each for two servers)."""
    if len(servers) == 1:
        return (shares[servers[0]] & np.uint64(15)).astype(np.int64)
    return ((shares[servers[0]] & np.uint64(3)) * 4 + (shares[servers[1]] & np.uint64(3))).astype(
        np.int64)


def test_any_t_shares_are_independent_of_the_secret() -> None:
    """Statistical test over 20 000 sharings per secret: χ²(15) stays below 50 (p ≈ 1e-5)."""
    n = 20_000
    for m, t, servers, seeded in ((5, 1, [3], {0: b"s" * 32}), (7, 2, [1, 5], {2: b"u" * 32,
                                                                          4: b"v" * 32})):
        stats = []
        for secret_value in (0, 1 << 40):
            secret = np.full(n, secret_value, np.uint64)
            plain = share(secret, m=m, t=t, prg=Prg(bytes([secret_value % 251]) * 32))
            compressed = _full(share_seeded(secret, m=m, t=t, seeds=seeded, label="z"), m, n, "z")
            stats.append((_low_bits(plain, servers), _low_bits(compressed, servers)))
        assert _chi2_two_sample(stats[0][0], stats[1][0], 16) < 50
        assert _chi2_two_sample(stats[0][1], stats[1][1], 16) < 50
    # Sanity: the statistic does see a dependence when there is one (t + 1 shares reveal).
    a = share(np.zeros(n, np.uint64), m=5, t=1, prg=Prg(b"a" * 32))
    b = share(np.full(n, 1, np.uint64), m=5, t=1, prg=Prg(b"b" * 32))
    leak_a = (F.sub(F.scale(a[0], 2), a[1]) & np.uint64(15)).astype(np.int64)  # = 2f(1) − f(2)
    leak_b = (F.sub(F.scale(b[0], 2), b[1]) & np.uint64(15)).astype(np.int64)
    assert _chi2_two_sample(leak_a, leak_b, 16) > 1000


@given(committees, seeds, st.data())
def test_rs_corrects_up_to_half_the_redundancy(mt: tuple[int, int], seed: bytes,
                                               data: st.DataObject) -> None:
    m, t = mt
    degree = data.draw(st.sampled_from([t, 2 * t]))
    secret = Prg(seed).field_elements(3)
    shares = share(secret, m=m, t=degree, prg=Prg(seed[::-1]))
    e_max = (m - degree - 1) // 2
    bad = data.draw(st.lists(st.integers(0, m - 1), max_size=e_max, unique=True))
    for j in bad:
        shares[j, data.draw(st.integers(0, 2))] ^= np.uint64(data.draw(st.integers(1, 1 << 40)))
        shares[j] %= np.uint64(P)
    opened = decode(list(range(m)), shares, degree, Prg(b"c" * 32))
    assert np.array_equal(opened.value, secret)
    assert sorted(opened.bad) == sorted(bad)


@given(committees, seeds, st.data())
def test_rs_detects_up_to_the_full_redundancy(mt: tuple[int, int], seed: bytes,
                                              data: st.DataObject) -> None:
    m, t = mt
    degree = data.draw(st.sampled_from([t, 2 * t]))
    shares = share(Prg(seed).field_elements(2), m=m, t=degree, prg=Prg(seed[::-1]))
    n_err = data.draw(st.integers(1, m - degree - 1))
    bad = data.draw(st.lists(st.integers(0, m - 1), min_size=n_err, max_size=n_err, unique=True))
    for j in bad:
        shares[j, 0] = np.uint64((int(shares[j, 0]) + data.draw(st.integers(1, P - 1))) % P)
    assert not is_codeword(list(range(m)), shares, degree)


def test_przs_opened_product_shares_are_uniform_given_the_value() -> None:
    """Open x·y + PRZS for a fixed x·y: each server's share is uniform (χ² vs a uniform draw)."""
    n, m, t = 20_000, 5, 1
    x = share(np.full(n, 3, np.uint64), m=m, t=t, prg=Prg(b"x" * 32))
    y = share(np.full(n, 5, np.uint64), m=m, t=t, prg=Prg(b"y" * 32))
    keys = {a: bytes([i + 1]) * 32 for i, a in enumerate(key_sets(m, t))}
    opened = np.stack([F.add(F.mul(x[j], y[j]), zero_share({a: k for a, k in keys.items()
                                                             if j in a}, j, m=m, t=t,
                                                            label="p", length=n))
                       for j in range(m)])
    assert is_codeword(list(range(m)), opened, 2 * t)
    assert np.all(reconstruct(list(range(m)), opened, degree=2 * t) == 15)
    uniform = (Prg(b"w" * 32).field_elements(n) & np.uint64(15)).astype(np.int64)
    for j in range(m):
        assert _chi2_two_sample((opened[j] & np.uint64(15)).astype(np.int64), uniform, 16) < 50
