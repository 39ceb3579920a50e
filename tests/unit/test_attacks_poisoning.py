"""Poisoning attacks: spec validation, data attacks, each model attack's defining property."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
import torch

from phalanx.attacks.poisoning import (
    Attack,
    AttackSpec,
    Knowledge,
    add_trigger,
    attack_success_rate,
    compute_alie_z,
    compute_max_pairwise_distance,
    craft_updates,
    poison_data,
)
from phalanx.errors import ConfigError

MODEL_ATTACKS = [Attack.SIGN_FLIP, Attack.SCALING, Attack.GAUSSIAN, Attack.ALIE, Attack.IPM,
                 Attack.MIN_MAX, Attack.FREE_RIDER]


def make_updates(h: int = 14, k: int = 6, d: int = 50, seed: int = 0):
    """Honest and own-benign updates scattered around one mean direction."""
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal(d)
    honest = (mu + 0.3 * rng.standard_normal((h, d))).astype(np.float32)
    own = (mu + 0.3 * rng.standard_normal((k, d))).astype(np.float32)
    return honest, own


class Untouchable:
    """Stands in for ``honest`` under PARTIAL knowledge: any use of it fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"honest.{name} was read under partial knowledge")

    def __array__(self, *args, **kwargs):
        raise AssertionError("honest was converted to an array under partial knowledge")

    def __len__(self) -> int:
        raise AssertionError("len(honest) under partial knowledge")


# ---------------------------------------------------------------------------- spec


def test_spec_accepts_enum_values_as_strings() -> None:
    spec = AttackSpec("min-max", knowledge="partial")
    assert spec.attack is Attack.MIN_MAX and spec.knowledge is Knowledge.PARTIAL
    assert AttackSpec(Attack.BACKDOOR).is_data_attack
    assert AttackSpec(Attack.LABEL_FLIP).is_data_attack
    assert not AttackSpec(Attack.IPM).is_data_attack


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"attack": "flip"}, "attack='flip'"),
        ({"knowledge": "some"}, "knowledge='some'"),
        ({"scale": 0.0}, "scale=0.0"),
        ({"sigma": -1.0}, "sigma=-1.0"),
        ({"ipm_epsilon": float("inf")}, "ipm_epsilon=inf"),
        ({"alie_z": 0.0}, "alie_z=0.0"),
        ({"min_max_direction": "random"}, "min_max_direction='random'"),
        ({"backdoor_target": -1}, "backdoor_target=-1"),
        ({"backdoor_fraction": 0.0}, "backdoor_fraction=0.0"),
        ({"backdoor_fraction": 1.5}, "backdoor_fraction=1.5"),
        ({"backdoor_boost": 0.0}, "backdoor_boost=0.0"),
        ({"free_rider": "lazy"}, "free_rider='lazy'"),
    ],
)
def test_bad_spec_names_the_field(kwargs: dict, needle: str) -> None:
    kwargs = {"attack": Attack.NONE, **kwargs}
    with pytest.raises(ConfigError, match=needle):
        AttackSpec(**kwargs)


# ---------------------------------------------------------------------------- data attacks


def test_label_flip_maps_y_to_c_minus_1_minus_y_and_keeps_inputs() -> None:
    x, y = torch.rand(10, 1, 8, 8), torch.arange(10)
    x_out, y_out = poison_data(AttackSpec(Attack.LABEL_FLIP), x, y, 10, np.random.default_rng(0))
    assert y_out.tolist() == list(range(9, -1, -1))
    assert torch.equal(x_out, x) and y.tolist() == list(range(10))


def test_add_trigger_sets_a_bright_bottom_right_square_only() -> None:
    x = torch.zeros(2, 1, 28, 28)
    out = add_trigger(x)
    assert float(out[..., 24:, 24:].min()) == 1.0
    assert float(out.sum()) == 2 * 16
    assert float(x.sum()) == 0.0
    assert float(add_trigger(torch.zeros(1, 1, 8, 8)).sum()) == 4


def test_backdoor_poisons_the_requested_fraction_with_trigger_and_target() -> None:
    # Prepare
    x, y = torch.zeros(40, 1, 8, 8), torch.full((40,), 5)
    spec = AttackSpec(Attack.BACKDOOR, backdoor_target=2, backdoor_fraction=0.25)
    # Execute
    x_out, y_out = poison_data(spec, x, y, 10, np.random.default_rng(1))
    # Assert
    poisoned = y_out == 2
    assert int(poisoned.sum()) == 10
    assert bool((x_out[poisoned][..., -2:, -2:] == 1.0).all())
    assert float(x_out[~poisoned].sum()) == 0.0
    assert bool((y == 5).all())


def test_backdoor_target_must_be_a_class() -> None:
    with pytest.raises(ConfigError, match="backdoor_target=10"):
        poison_data(AttackSpec(Attack.BACKDOOR, backdoor_target=10), torch.zeros(2, 1, 8, 8),
                    torch.zeros(2, dtype=torch.int64), 10, np.random.default_rng(0))


class CornerDetector(torch.nn.Module):
    """Predicts class ``target`` when the bottom-right pixel is bright, else class ``other``."""

    def __init__(self, target: int, other: int) -> None:
        super().__init__()
        self.target, self.other = target, other

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 10)
        bright = x[:, 0, -1, -1] > 0.99
        logits[bright, self.target] = 1.0
        logits[~bright, self.other] = 1.0
        return logits


def test_attack_success_rate_counts_non_target_triggered_images() -> None:
    x, y = torch.zeros(30, 1, 8, 8), torch.arange(30) % 3
    assert attack_success_rate(CornerDetector(target=0, other=1), x, y, target=0) == 1.0
    assert attack_success_rate(CornerDetector(target=2, other=1), x, y, target=0) == 0.0
    with pytest.raises(ConfigError, match="target=0"):
        attack_success_rate(CornerDetector(0, 1), x, torch.zeros(30, dtype=torch.int64), 0)


# ---------------------------------------------------------------------------- model attacks


def test_identity_for_none_and_data_attacks_and_boost_for_backdoor() -> None:
    honest, own = make_updates()
    rng = np.random.default_rng(0)
    for attack in (Attack.NONE, Attack.LABEL_FLIP, Attack.BACKDOOR):
        out = craft_updates(AttackSpec(attack), own, honest, rng=rng)
        assert np.array_equal(out, own) and out is not own
    boosted = craft_updates(AttackSpec(Attack.BACKDOOR, backdoor_boost=5.0), own, None, rng=rng)
    np.testing.assert_allclose(boosted, 5 * own, rtol=1e-6)


def test_sign_flip_scaling_gaussian() -> None:
    honest, own = make_updates()
    rng = np.random.default_rng(0)
    flipped = craft_updates(AttackSpec(Attack.SIGN_FLIP), own, honest, rng=rng)
    np.testing.assert_allclose(flipped, -4 * own, rtol=1e-6)
    bit_flip = AttackSpec(Attack.SIGN_FLIP, flip_scale=1.0)
    assert np.array_equal(craft_updates(bit_flip, own, honest, rng=rng), -own)
    scaled = craft_updates(AttackSpec(Attack.SCALING, scale=3.0), own, honest, rng=rng)
    np.testing.assert_allclose(scaled, 3 * own, rtol=1e-6)
    noise = craft_updates(AttackSpec(Attack.GAUSSIAN, sigma=2.0), np.zeros((200, 500)), None,
                          rng=rng)
    assert abs(float(noise.mean())) < 0.02 and float(noise.std()) == pytest.approx(2.0, rel=0.01)


def test_free_rider_zero_and_stale() -> None:
    honest, own = make_updates(k=3)
    prev = np.arange(own.shape[1], dtype=np.float32)
    rng = np.random.default_rng(0)
    zero = craft_updates(AttackSpec(Attack.FREE_RIDER), own, honest, rng=rng,
                         previous_global_update=prev)
    stale = craft_updates(AttackSpec(Attack.FREE_RIDER, free_rider="stale"), own, honest,
                          rng=rng, previous_global_update=prev)
    first_round = craft_updates(AttackSpec(Attack.FREE_RIDER, free_rider="stale"), own, honest,
                                rng=rng)
    assert not zero.any() and not first_round.any()
    assert stale.shape == own.shape and all(np.array_equal(row, prev) for row in stale)
    with pytest.raises(ConfigError, match="previous_global_update"):
        craft_updates(AttackSpec(Attack.FREE_RIDER, free_rider="stale"), own, honest, rng=rng,
                      previous_global_update=prev[:-1])


def test_alie_z_max_matches_baruch_formula() -> None:
    # n=20, m=6: s = floor(20/2 + 1) - 6 = 5 supporters, z = Phi^-1(15/20)
    assert compute_alie_z(20, 6) == pytest.approx(NormalDist().inv_cdf(0.75))
    assert compute_alie_z(50, 10) > compute_alie_z(50, 1) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ConfigError, match="n=10"):
        compute_alie_z(10, 6)


def test_alie_stays_within_z_std_of_the_benign_mean() -> None:
    # Prepare
    honest, own = make_updates()
    benign = np.concatenate([honest, own]).astype(np.float64)
    mean, std = benign.mean(axis=0), benign.std(axis=0)
    z = compute_alie_z(20, 6)
    # Execute
    out = craft_updates(AttackSpec(Attack.ALIE), own, honest, rng=np.random.default_rng(0))
    # Assert: every attacker sends mean - z std, within z std of the mean per coordinate
    assert out.shape == own.shape and np.array_equal(out[0], out[-1])
    np.testing.assert_allclose(out[0], mean - z * std, rtol=1e-5, atol=1e-6)
    assert (np.abs(out[0] - mean) <= z * std + 1e-5).all()


def test_ipm_is_minus_epsilon_times_the_benign_mean() -> None:
    honest, own = make_updates()
    out = craft_updates(AttackSpec(Attack.IPM, ipm_epsilon=0.1), own, honest,
                        rng=np.random.default_rng(0))
    expected = -0.1 * np.concatenate([honest, own]).mean(axis=0)
    np.testing.assert_allclose(out[2], expected, rtol=1e-5, atol=1e-6)
    assert float(out[0] @ honest.mean(axis=0)) < 0


@pytest.mark.parametrize("direction", ["unit", "std", "sign"])
def test_min_max_meets_the_distance_bound_tightly(direction: str) -> None:
    # Prepare
    honest, own = make_updates(seed=3)
    benign = np.concatenate([honest, own]).astype(np.float64)
    limit = max(np.linalg.norm(a - b) for a in benign for b in benign)
    spec = AttackSpec(Attack.MIN_MAX, min_max_direction=direction)
    # Execute
    out = craft_updates(spec, own, honest, rng=np.random.default_rng(0))
    # Assert: max distance to a benign update is at most, and nearly exactly, the benign diameter
    reach = float(np.linalg.norm(benign - out[0].astype(np.float64), axis=1).max())
    assert reach <= limit * (1 + 1e-6)
    assert reach >= limit * (1 - 1e-3)
    assert float(np.linalg.norm(out[0] - benign.mean(axis=0))) > 0.1 * limit


@pytest.mark.parametrize("direction", ["unit", "std", "sign"])
def test_min_max_gamma_matches_the_papers_binary_search(direction: str) -> None:
    # Prepare: the paper's search on gamma, written plainly, as the reference model
    honest, own = make_updates(h=7, k=3, d=40, seed=5)
    benign = np.concatenate([honest, own]).astype(np.float64)
    mean = benign.mean(axis=0)
    limit = max(np.linalg.norm(a - b) for a in benign for b in benign)
    p = {"unit": -mean / np.linalg.norm(mean), "std": -benign.std(axis=0),
         "sign": -np.sign(mean)}[direction]
    lo, hi = 0.0, 1e3
    for _ in range(100):
        mid = (lo + hi) / 2
        fits = np.linalg.norm(benign - (mean + mid * p), axis=1).max() <= limit
        lo, hi = (mid, hi) if fits else (lo, mid)
    # Execute
    out = craft_updates(AttackSpec(Attack.MIN_MAX, min_max_direction=direction), own, honest,
                        rng=np.random.default_rng(0))
    # Assert
    np.testing.assert_allclose(out[0], mean + lo * p, rtol=1e-5, atol=1e-6)


def test_max_pairwise_distance_matches_brute_force() -> None:
    honest, _ = make_updates(d=30)
    brute = max(np.linalg.norm(a - b) for a in honest for b in honest)
    assert compute_max_pairwise_distance(honest.astype(np.float64)) == pytest.approx(brute)


@pytest.mark.parametrize("attack", MODEL_ATTACKS)
def test_partial_knowledge_never_reads_honest(attack: Attack) -> None:
    # Prepare
    _, own = make_updates(k=4)
    spec = AttackSpec(attack, knowledge=Knowledge.PARTIAL)
    # Execute
    out = craft_updates(spec, own, Untouchable(), rng=np.random.default_rng(0),  # type: ignore[arg-type]
                        num_clients=20)
    # Assert: the statistical attacks use the attackers' own benign updates only
    assert out.shape == own.shape and np.isfinite(out).all()
    if attack is Attack.IPM:
        np.testing.assert_allclose(out[0], -0.5 * own.mean(axis=0), rtol=1e-5, atol=1e-6)
    if attack is Attack.ALIE:
        z = compute_alie_z(20, 4)
        np.testing.assert_allclose(out[0], own.mean(axis=0) - z * own.std(axis=0), rtol=1e-4,
                                   atol=1e-6)


def test_omniscient_statistical_attacks_need_honest_and_partial_alie_needs_n() -> None:
    _, own = make_updates()
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="honest=None"):
        craft_updates(AttackSpec(Attack.MIN_MAX), own, None, rng=rng)
    with pytest.raises(ConfigError, match="num_clients"):
        craft_updates(AttackSpec(Attack.ALIE, knowledge="partial"), own, None, rng=rng)
    z_given = craft_updates(AttackSpec(Attack.ALIE, knowledge="partial", alie_z=1.0), own, None,
                            rng=rng)
    np.testing.assert_allclose(z_given[0], own.mean(0) - own.std(0), rtol=1e-4, atol=1e-6)


def test_update_shape_errors() -> None:
    honest, own = make_updates()
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="own_benign"):
        craft_updates(AttackSpec(Attack.SIGN_FLIP), own[0], honest, rng=rng)
    with pytest.raises(ConfigError, match="d=49"):
        craft_updates(AttackSpec(Attack.IPM), own, honest[:, :49], rng=rng)
