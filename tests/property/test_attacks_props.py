"""Property tests: the stealthy attacks respect their defining constraints on any benign set."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from phalanx.attacks.poisoning import Attack, AttackSpec, Knowledge, craft_updates


@st.composite
def benign_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    h = draw(st.integers(1, 10))
    k = draw(st.integers(1, 5))
    d = draw(st.integers(1, 30))
    seed = draw(st.integers(0, 2**31))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    rng = np.random.default_rng(seed)
    offset = rng.standard_normal(d) * draw(st.sampled_from([0.0, 1.0, 10.0]))
    honest = (offset + scale * rng.standard_normal((h, d))).astype(np.float32)
    own = (offset + scale * rng.standard_normal((k, d))).astype(np.float32)
    return honest, own


def diameter(benign: np.ndarray) -> float:
    return max(float(np.linalg.norm(a - b)) for a in benign for b in benign)


@given(benign_sets(), st.sampled_from(["unit", "std", "sign"]),
       st.sampled_from(list(Knowledge)))
def test_min_max_never_leaves_the_benign_diameter(
    case: tuple[np.ndarray, np.ndarray], direction: str, knowledge: Knowledge
) -> None:
    honest, own = case
    spec = AttackSpec(Attack.MIN_MAX, knowledge=knowledge, min_max_direction=direction)
    known = honest if knowledge is Knowledge.OMNISCIENT else None
    out = craft_updates(spec, own, known, rng=np.random.default_rng(0))
    benign = (np.concatenate([honest, own]) if known is not None else own).astype(np.float64)
    reach = float(np.linalg.norm(benign - out[0].astype(np.float64), axis=1).max())
    scale = float(np.abs(benign).max()) + 1.0
    assert reach <= diameter(benign) * (1 + 1e-5) + 1e-6 * scale
    assert np.isfinite(out).all() and out.shape == own.shape


@given(benign_sets(), st.floats(0.01, 5.0))
def test_alie_stays_within_z_std_per_coordinate(
    case: tuple[np.ndarray, np.ndarray], z: float
) -> None:
    honest, own = case
    out = craft_updates(AttackSpec(Attack.ALIE, alie_z=z), own, honest,
                        rng=np.random.default_rng(0))
    benign = np.concatenate([honest, own]).astype(np.float64)
    mean, std = benign.mean(axis=0), benign.std(axis=0)
    slack = 1e-5 * (np.abs(mean) + std) + 1e-6
    assert (np.abs(out.astype(np.float64) - mean) <= z * std + slack).all()
