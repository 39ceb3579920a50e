"""Properties of member-dealt zero sharings (mpc.dealt): every extraction is a degree-2t zero
sharing, and an opened product re-randomized by one is uniform given its value."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx.mpc import dealt as D
from phalanx.mpc import field as F
from phalanx.mpc.prg import Prg
from phalanx.mpc.rs import is_codeword
from phalanx.mpc.shamir import reconstruct, share


def _masks(m: int, t: int, length: int, seed: bytes, corrupt: dict[int, bytes] | None = None
           ) -> np.ndarray:
    """Every member's extracted masks; ``corrupt`` dealers use the given (known) seeds."""
    dealings = [D.deal(i, m=m, t=t, label="p", length=length,
                       prg=Prg((corrupt or {}).get(i, F_seed(seed, i)))) for i in range(m)]
    return np.stack([D.extract(np.stack([D.share_of(d.payloads[j], dealer=d.dealer, receiver=j,
                                                    m=m, t=t, label="p", length=length)
                                         for d in dealings]), m=m, t=t, length=length)
                     for j in range(m)])


def F_seed(seed: bytes, i: int) -> bytes:  # noqa: N802 - a seed per dealer
    return bytes((b + i) % 256 for b in seed)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([(4, 1), (5, 1), (7, 2), (10, 3)]), st.binary(min_size=32, max_size=32),
       st.integers(1, 40))
def test_extraction_is_a_zero_sharing_of_degree_2t(mt: tuple[int, int], seed: bytes,
                                                  length: int) -> None:
    m, t = mt
    masks = _masks(m, t, length, seed)
    assert D.is_zero_sharing(list(range(m)), masks, t)
    assert np.all(reconstruct(list(range(m)), masks, degree=2 * t) == 0)


def _chi2_two_sample(x: np.ndarray, y: np.ndarray, bins: int) -> float:
    cx = np.bincount(x, minlength=bins).astype(float)
    cy = np.bincount(y, minlength=bins).astype(float)
    return float((((cx - cy) ** 2) / np.maximum(cx + cy, 1)).sum())


def test_dealt_opened_product_shares_are_uniform_given_the_value() -> None:
    """Open x·y + dealt mask for a fixed x·y, with t dealers corrupt (their dealings known):
    each honest server's opened share is uniform (χ² against a uniform draw), the opening is
    a degree-2t codeword of the value."""
    n, m, t = 20_000, 7, 2
    x = share(np.full(n, 3, np.uint64), m=m, t=t, prg=Prg(b"x" * 32))
    y = share(np.full(n, 5, np.uint64), m=m, t=t, prg=Prg(b"y" * 32))
    masks = _masks(m, t, n, b"h" * 32, corrupt={0: b"\x00" * 32, 1: b"\x01" * 32})
    opened = np.stack([F.add(F.mul(x[j], y[j]), masks[j]) for j in range(m)])
    assert is_codeword(list(range(m)), opened, 2 * t)
    assert np.all(reconstruct(list(range(m)), opened, degree=2 * t) == 15)
    uniform = (Prg(b"w" * 32).field_elements(n) & np.uint64(15)).astype(np.int64)
    for j in range(2, m):
        assert _chi2_two_sample((opened[j] & np.uint64(15)).astype(np.int64), uniform, 16) < 50
    # what the mask hides: unmasked, the opened polynomial's top coefficient is the product of
    # the factors' top coefficients (structure beyond the value); masked, it is uniform
    k = 2000
    top = _leading(opened[:, :k], 2 * t)
    product = [a * b % F.P for a, b in zip(_leading(x[:, :k], t), _leading(y[:, :k], t),
                                           strict=True)]
    unmasked = _leading(np.stack([F.mul(x[j], y[j]) for j in range(m)])[:, :k], 2 * t)
    assert unmasked == product and all(a != b for a, b in zip(top, product, strict=True))
    assert _chi2_two_sample(np.array(top, np.int64) & 15, uniform[:k], 16) < 50


def _leading(shares: np.ndarray, degree: int) -> list[int]:
    """The X^degree coefficient of the polynomial through the first degree + 1 shares."""
    xs = list(range(1, degree + 2))
    w = [pow(int(np.prod([xj - xk for xk in xs if xk != xj])) % F.P, F.P - 2, F.P) for xj in xs]
    return [sum(wj * int(shares[j, c]) for j, wj in enumerate(w)) % F.P
            for c in range(shares.shape[1])]
