"""Local training: flat params, loss decreases, determinism, batched == looped, evaluation."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from phalanx.errors import ConfigError, PhalanxError
from phalanx.ml import train as train_module
from phalanx.ml.data import load_dataset
from phalanx.ml.models import count_parameters, make_model
from phalanx.ml.parallel import assign_clients
from phalanx.ml.train import (
    TrainConfig,
    choose_method,
    evaluate,
    get_flat_params,
    local_train,
    set_flat_params,
    train_clients,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_flat_params_round_trip() -> None:
    model = make_model("cnn", (1, 8, 8), 10, seed=0)
    vec = np.random.default_rng(0).standard_normal(count_parameters(model)).astype(np.float32)
    set_flat_params(model, vec)
    out = get_flat_params(model)
    assert out.dtype == np.float32 and np.array_equal(out, vec)
    out[0] += 1.0  # a copy: mutating it leaves the model alone
    assert np.array_equal(get_flat_params(model), vec)


def test_set_flat_params_rejects_wrong_length() -> None:
    model = make_model("logreg", (1, 8, 8), 10)
    with pytest.raises(ConfigError, match=r"expected \(650,\)"):
        set_flat_params(model, np.zeros(649, np.float32))


def test_training_decreases_loss_and_beats_chance_on_digits(digits) -> None:
    # Prepare
    model = make_model("mlp", digits.input_shape, 10, seed=0)
    acc0, loss0 = evaluate(model, digits.x_test, digits.y_test)
    # Execute
    update = local_train(model, digits.x_train, digits.y_train, TrainConfig(epochs=2), seed=0)
    acc1, loss1 = evaluate(model, digits.x_test, digits.y_test)
    # Assert
    assert loss1 < 0.5 * loss0
    assert acc1 > 0.85 > acc0
    assert update.dtype == np.float32 and update.shape == (count_parameters(model),)


def test_local_train_returns_local_minus_start_and_is_seeded(digits) -> None:
    x, y = digits.x_train[:200], digits.y_train[:200]
    model = make_model("cnn", digits.input_shape, 10, seed=1)
    start = get_flat_params(model)
    u1 = local_train(model, x, y, TrainConfig(), seed=7)
    assert np.allclose(get_flat_params(model) - start, u1)
    set_flat_params(model, start)
    u2 = local_train(model, x, y, TrainConfig(), seed=7)
    set_flat_params(model, start)
    u3 = local_train(model, x, y, TrainConfig(), seed=8)
    assert np.array_equal(u1, u2) and not np.array_equal(u1, u3)


@pytest.mark.parametrize("name", ["logreg", "cnn"])
def test_batched_equals_looped_on_unequal_shards(digits, name: str) -> None:
    # Prepare: unequal client sizes (17..83 examples) and a partial last batch each
    model = make_model(name, digits.input_shape, 10, seed=2)
    start = get_flat_params(model)
    sizes = [17, 40, 83, 5]
    bounds = np.cumsum([0, *sizes])
    pairs = zip(bounds[:-1], bounds[1:], strict=True)
    shards = [(digits.x_train[a:b], digits.y_train[a:b]) for a, b in pairs]
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.1, momentum=0.9, weight_decay=1e-3)
    # Execute
    looped = train_clients(model, start, shards, cfg, seeds=[3, 4, 5, 6], method="loop")
    batched = train_clients(model, start, shards, cfg, seeds=[3, 4, 5, 6], method="vmap")
    # Assert
    assert looped.shape == batched.shape == (4, start.shape[0])
    assert np.abs(looped).max() > 1e-3
    np.testing.assert_allclose(batched, looped, rtol=1e-4, atol=1e-6)
    assert np.array_equal(get_flat_params(model), start)


def test_train_clients_matches_local_train_per_client(digits) -> None:
    model = make_model("logreg", digits.input_shape, 10, seed=0)
    start = get_flat_params(model)
    shards = [(digits.x_train[:50], digits.y_train[:50]), (digits.x_train[50:90],
                                                           digits.y_train[50:90])]
    out = train_clients(model, start, shards, TrainConfig(), seeds=[1, 2])
    set_flat_params(model, start)
    second = local_train(model, *shards[1], TrainConfig(), seed=2)
    np.testing.assert_allclose(out[1], second, rtol=1e-4, atol=1e-6)


def test_evaluate_perfect_and_uniform_models() -> None:
    x = torch.zeros(6, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    model = make_model("logreg", (1, 8, 8), 3)
    set_flat_params(model, np.zeros(count_parameters(model), np.float32))
    acc, loss = evaluate(model, x, y, batch_size=4)
    assert loss == pytest.approx(np.log(3), rel=1e-6)
    assert acc == pytest.approx(2 / 6)  # argmax of ties is class 0


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"momentum": 1.0}, "momentum=1.0"),
        ({"weight_decay": -1.0}, "weight_decay=-1.0"),
    ],
)
def test_bad_train_config_is_a_config_error(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        TrainConfig(**kwargs)


def test_train_clients_argument_errors(digits) -> None:
    model = make_model("logreg", digits.input_shape, 10)
    start = get_flat_params(model)
    shard = (digits.x_train[:4], digits.y_train[:4])
    with pytest.raises(ConfigError, match="len\\(seeds\\)=1"):
        train_clients(model, start, [shard, shard], TrainConfig(), seeds=[0])
    with pytest.raises(ConfigError, match="method='gpu'"):
        train_clients(model, start, [shard], TrainConfig(), seeds=[0], method="gpu")
    with pytest.raises(ConfigError, match="y has shape"):
        train_clients(model, start, [(shard[0], shard[1][:3])], TrainConfig(), seeds=[0])
    assert train_clients(model, start, [], TrainConfig(), seeds=[]).shape == (0, start.shape[0])


def test_fork_workers_match_the_loop_and_restore_the_model(digits) -> None:
    # Prepare
    model = make_model("cnn", digits.input_shape, 10, seed=3)
    start = get_flat_params(model)
    cuts = [(i * 30, (i + 1) * 30 + i) for i in range(5)]
    shards = [(digits.x_train[a:b], digits.y_train[a:b]) for a, b in cuts]
    # Execute
    looped = train_clients(model, start, shards, TrainConfig(), seeds=range(5), method="loop")
    forked = train_clients(model, start, shards, TrainConfig(), seeds=range(5), method="fork",
                           workers=2)
    again = train_clients(model, start, shards, TrainConfig(), seeds=range(5), method="fork",
                          workers=3)
    # Assert: equal to the loop up to float order, and bit-reproducible whatever the worker count
    np.testing.assert_allclose(forked, looped, rtol=1e-4, atol=1e-6)
    assert np.array_equal(forked, again)
    assert np.array_equal(get_flat_params(model), start)


def test_fork_worker_failure_is_reported(digits) -> None:
    model = make_model("logreg", digits.input_shape, 10)
    bad = (digits.x_train[:8], torch.full((8,), 99))  # label 99 makes cross-entropy fail
    good = (digits.x_train[:8], digits.y_train[:8])
    with pytest.raises(PhalanxError, match="exited with codes"):
        train_clients(model, get_flat_params(model), [good, bad], TrainConfig(), seeds=[0, 1],
                      method="fork", workers=2)


def test_assign_clients_balances_examples() -> None:
    chunks = assign_clients([100, 10, 60, 50, 5], 2)
    assert sorted(i for c in chunks for i in c) == [0, 1, 2, 3, 4]
    loads = sorted(sum([100, 10, 60, 50, 5][i] for i in c) for c in chunks)
    assert loads == [110, 115]


def test_auto_method_choice(monkeypatch) -> None:
    # Prepare: enough examples that forking pays (examples x parameters >= FORK_MIN_WORK)
    small = [(torch.zeros(2000, 1, 8, 8), torch.zeros(2000, dtype=torch.int64))] * 2
    large = [(torch.zeros(2000, 1, 28, 28), torch.zeros(2000, dtype=torch.int64))] * 2
    tiny = [(torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.int64))] * 2
    cnn = make_model("cnn", (1, 28, 28), 10)
    monkeypatch.setattr(train_module, "get_available_cpus", lambda: 2)
    # Execute / Assert: workers vmap on small images, loop on large ones
    assert choose_method(make_model("mlp", (1, 28, 28), 10), large) == "fork"
    assert choose_method(make_model("cnn1m", (1, 8, 8), 10), small) == "fork-vmap"
    assert choose_method(cnn, large) == "fork"
    assert choose_method(cnn, tiny) == "loop"  # too little work to pay for the fork
    assert choose_method(cnn, large[:1]) == "loop"
    assert choose_method(make_model("mlp", (1, 28, 28), 10), tiny) == "vmap"
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, daemon=True)
    server = threading.Thread(target=stop.wait, daemon=False)
    try:
        helper.start()
        assert choose_method(cnn, large) == "fork"  # daemon helpers (progress bars) are fine
        server.start()
        assert choose_method(cnn, large) == "loop"
    finally:
        stop.set()
        for thread in (helper, server):
            if thread.ident is not None:
                thread.join()
    monkeypatch.setattr(train_module, "get_available_cpus", lambda: 1)
    assert choose_method(cnn, large) == "loop"


def test_fork_vmap_matches_the_loop(digits) -> None:
    model = make_model("mlp", digits.input_shape, 10, seed=0)
    start = get_flat_params(model)
    shards = [(digits.x_train[i * 40 : (i + 1) * 40 + 3 * i],
               digits.y_train[i * 40 : (i + 1) * 40 + 3 * i]) for i in range(4)]
    looped = train_clients(model, start, shards, TrainConfig(), seeds=range(4), method="loop")
    forked = train_clients(model, start, shards, TrainConfig(), seeds=range(4),
                           method="fork-vmap", workers=2)
    np.testing.assert_allclose(forked, looped, rtol=1e-4, atol=1e-6)
