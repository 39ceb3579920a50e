"""Each poisoning attack against an undefended mean and a robust rule (style.md §8 adversarial).

Crude model attacks (sign-flip, scaling, gaussian, IPM) drag the plain mean far from the honest
mean while the coordinate median stays close. ALIE and min-max are built to slip past such rules,
so for them the test checks that they do move the robust aggregate in the attack's direction.
Data attacks are checked end to end on digits: backdoored training plants the trigger, label
flipping destroys accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest

from phalanx.attacks.poisoning import (
    Attack,
    AttackSpec,
    attack_success_rate,
    craft_updates,
    poison_data,
)
from phalanx.ml.data import load_dataset
from phalanx.ml.models import make_model
from phalanx.ml.train import TrainConfig, evaluate, local_train
from phalanx.rules import RuleContext, make_rule

pytestmark = pytest.mark.usefixtures("one_torch_thread")


CRUDE = {
    Attack.SIGN_FLIP: AttackSpec(Attack.SIGN_FLIP),
    Attack.SCALING: AttackSpec(Attack.SCALING, scale=10.0),
    Attack.GAUSSIAN: AttackSpec(Attack.GAUSSIAN, sigma=30.0),
    Attack.IPM: AttackSpec(Attack.IPM, ipm_epsilon=2.0),
}


def round_updates(seed: int = 0, h: int = 14, k: int = 6, d: int = 200):
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal(d)
    honest = (mu + 0.2 * rng.standard_normal((h, d))).astype(np.float32)
    own = (mu + 0.2 * rng.standard_normal((k, d))).astype(np.float32)
    return honest, own


def aggregate(rule: str, updates: np.ndarray) -> np.ndarray:
    ctx = RuleContext(dim=updates.shape[1])
    return make_rule(rule).aggregate(list(updates), ctx).vector


def relative_error(vec: np.ndarray, honest: np.ndarray) -> float:
    target = honest.mean(axis=0)
    return float(np.linalg.norm(vec - target) / np.linalg.norm(target))


@pytest.mark.parametrize("attack", list(CRUDE))
def test_crude_attacks_move_the_mean_far_but_not_the_median(attack: Attack) -> None:
    # Prepare
    honest, own = round_updates()
    malicious = craft_updates(CRUDE[attack], own, honest, rng=np.random.default_rng(1))
    updates = np.concatenate([honest, malicious])
    # Execute
    mean_err = relative_error(aggregate("fedavg", updates), honest)
    median_err = relative_error(aggregate("median", updates), honest)
    clean_err = relative_error(aggregate("fedavg", np.concatenate([honest, own])), honest)
    # Assert
    assert mean_err > 0.5
    assert median_err < 0.15
    assert clean_err < 0.05


@pytest.mark.parametrize("spec", [AttackSpec(Attack.ALIE), AttackSpec(Attack.MIN_MAX),
                                  AttackSpec(Attack.MIN_MAX, min_max_direction="std")])
def test_stealthy_attacks_shift_the_median_along_their_direction(spec: AttackSpec) -> None:
    # Prepare
    honest, own = round_updates(seed=2)
    benign = np.concatenate([honest, own])
    malicious = craft_updates(spec, own, honest, rng=np.random.default_rng(0))
    direction = malicious[0] - benign.mean(axis=0)
    # Execute
    clean = aggregate("median", benign)
    attacked = aggregate("median", np.concatenate([honest, malicious]))
    # Assert: the attacked median moved toward the malicious vector, beyond the honest spread
    shift = float((attacked - clean) @ direction / np.linalg.norm(direction))
    assert shift > 0.2 * float(np.linalg.norm(benign.std(axis=0)))


def test_backdoor_training_plants_the_trigger_on_digits() -> None:
    # Prepare
    ds = load_dataset("digits", seed=0)
    spec = AttackSpec(Attack.BACKDOOR, backdoor_target=0, backdoor_fraction=0.3)
    x_bad, y_bad = poison_data(spec, ds.x_train, ds.y_train, 10, np.random.default_rng(0))
    cfg = TrainConfig(epochs=3)
    clean = make_model("mlp", ds.input_shape, 10, seed=0)
    dirty = make_model("mlp", ds.input_shape, 10, seed=0)
    # Execute
    local_train(clean, ds.x_train, ds.y_train, cfg, seed=0)
    local_train(dirty, x_bad, y_bad, cfg, seed=0)
    # Assert: the backdoor works and the main task survives
    assert attack_success_rate(clean, ds.x_test, ds.y_test, 0) < 0.3
    assert attack_success_rate(dirty, ds.x_test, ds.y_test, 0) > 0.8
    assert evaluate(dirty, ds.x_test, ds.y_test)[0] > 0.8


def test_label_flip_training_destroys_accuracy_on_digits() -> None:
    ds = load_dataset("digits", seed=0)
    x_bad, y_bad = poison_data(AttackSpec(Attack.LABEL_FLIP), ds.x_train, ds.y_train, 10,
                               np.random.default_rng(0))
    model = make_model("logreg", ds.input_shape, 10, seed=0)
    local_train(model, x_bad, y_bad, TrainConfig(epochs=3), seed=0)
    assert evaluate(model, ds.x_test, ds.y_test)[0] < 0.2
