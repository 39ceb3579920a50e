"""Models: output shapes on 8x8 and 28x28 inputs, parameter counts, seeding, errors."""

from __future__ import annotations

import pytest
import torch

from phalanx.errors import ConfigError
from phalanx.ml.models import MODELS, count_parameters, make_model
from phalanx.ml.train import get_flat_params


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_output_shape_for_digits_and_mnist_inputs(name: str, shape: tuple[int, int, int]) -> None:
    model = make_model(name, shape, 10, seed=0)
    out = model(torch.zeros(3, *shape))
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()


def test_cnn1m_has_between_one_and_1_3_million_parameters_on_28x28() -> None:
    count = count_parameters(make_model("cnn1m", (1, 28, 28), 10))
    assert 1_000_000 <= count <= 1_300_000


def test_cnn_is_lenet5_sized_on_28x28() -> None:
    assert count_parameters(make_model("cnn", (1, 28, 28), 10)) == 61_706


def test_same_seed_same_weights_and_global_rng_untouched() -> None:
    # Prepare
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    # Execute
    a = get_flat_params(make_model("mlp", (1, 8, 8), 10, seed=4))
    b = get_flat_params(make_model("mlp", (1, 8, 8), 10, seed=4))
    c = get_flat_params(make_model("mlp", (1, 8, 8), 10, seed=5))
    # Assert
    assert (a == b).all() and not (a == c).all()
    assert torch.equal(torch.rand(1), expected_next)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("resnet", (1, 8, 8), 10), "resnet"),
        (("cnn", (1, 2, 2), 10), "input_shape"),
        (("cnn", (8, 8), 10), "input_shape"),
        (("cnn", (1, 8, 8), 1), "num_classes=1"),
    ],
)
def test_bad_model_arguments_are_config_errors(args: tuple, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        make_model(*args)


def tiny_builder(shape: tuple[int, int, int], classes: int) -> torch.nn.Module:
    c, h, w = shape
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(c * h * w, classes))


def test_user_model_from_module_function() -> None:
    build = make_model
    a = build(f"{__name__}:tiny_builder", (1, 4, 4), 3, seed=5)
    b = build(f"{__name__}:tiny_builder", (1, 4, 4), 3, seed=5)
    assert count_parameters(a) == 51 and (get_flat_params(a) == get_flat_params(b)).all()
    with pytest.raises(ConfigError, match="cannot import"):
        build("no_such_module_xyz:f", (1, 8, 8), 10)
    with pytest.raises(ConfigError, match="has no function"):
        build("math:nope", (1, 8, 8), 10)
    with pytest.raises(ConfigError, match="not a torch.nn.Module"):
        build("builtins:print", (1, 8, 8), 10)
