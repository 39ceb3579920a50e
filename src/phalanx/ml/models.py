"""Small image classifiers for 8x8 (digits) and 28x28 (MNIST) inputs, CPU PyTorch.

No batch norm and no dropout: every model is a pure function of its parameters, which is what lets
:func:`phalanx.ml.train.train_clients` train many clients at once with ``torch.func.vmap``.
"""

from __future__ import annotations

import torch
from torch import nn

from phalanx.errors import ConfigError

MODELS: tuple[str, ...] = ("logreg", "mlp", "cnn", "cnn1m")

#: Hidden width of the mlp (the "2NN" of McMahan et al. 2017 has two layers of 200 units).
MLP_HIDDEN = 200
#: Hidden width of cnn1m's dense layer: 1,260,554 parameters on 28x28 inputs (asserted in tests).
CNN1M_HIDDEN = 384


def make_model(
    name: str, input_shape: tuple[int, int, int], num_classes: int, *, seed: int = 0
) -> nn.Module:
    """Build model ``name`` for ``(C, H, W)`` inputs, initialised from ``seed``.

    ``name`` is one of :data:`MODELS` or ``package.module:function`` (:func:`make_user_model`).

    The global torch RNG is forked, so building a model never changes the caller's RNG state.
    """
    c, h, w = validate_shape(input_shape)
    if num_classes < 2:
        raise ConfigError(f"num_classes={num_classes} must be >= 2")
    if ":" in name:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return make_user_model(name, (c, h, w), num_classes)
    builders = {"logreg": make_logreg, "mlp": make_mlp, "cnn": make_lenet, "cnn1m": make_cnn1m}
    if name not in builders:
        raise ConfigError(f"model name={name!r} is unknown; choose one of {MODELS}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builders[name](c, h, w, num_classes)


def make_user_model(spec: str, input_shape: tuple[int, int, int],
                    num_classes: int) -> nn.Module:
    """``package.module:function`` called as ``function(input_shape, num_classes)``.

    The function must return a ``torch.nn.Module`` with trainable parameters and no buffers that
    training changes (batch norm): local training runs the model functionally
    (``torch.func``), so its output must depend on its parameters and input only.
    """
    import importlib

    module_name, _, func_name = spec.partition(":")
    if not module_name or not func_name:
        raise ConfigError(f"model={spec!r} must look like package.module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # any import failure of user code is a configuration error
        raise ConfigError(f"model={spec!r}: cannot import {module_name!r} "
                          f"({type(e).__name__}: {e})") from e
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(f"model={spec!r}: {module_name!r} has no function {func_name!r}")
    try:
        model = func(input_shape, num_classes)
    except Exception as e:  # the user's builder failed: say so in one line
        raise ConfigError(f"model={spec!r}: {func_name}({input_shape}, {num_classes}) raised "
                          f"{type(e).__name__}: {e}") from e
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model={spec!r} returned {type(model).__name__}, not a "
                          "torch.nn.Module")
    if count_parameters(model) == 0:
        raise ConfigError(f"model={spec!r} has no trainable parameters")
    return model


def validate_shape(input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """``(C, H, W)`` with positive entries and images of at least 4x4."""
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ConfigError(f"input_shape={input_shape} must be (C, H, W) with positive entries")
    c, h, w = (int(v) for v in input_shape)
    if h < 4 or w < 4:
        raise ConfigError(f"input_shape={input_shape} needs H, W >= 4")
    return c, h, w


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars (the update dimension d)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_logreg(c: int, h: int, w: int, num_classes: int) -> nn.Module:
    """Multinomial logistic regression on raw pixels."""
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))


def make_mlp(c: int, h: int, w: int, num_classes: int) -> nn.Module:
    """Two hidden ReLU layers of MLP_HIDDEN units (McMahan et al. 2017, "2NN")."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(c * h * w, MLP_HIDDEN),
        nn.ReLU(),
        nn.Linear(MLP_HIDDEN, MLP_HIDDEN),
        nn.ReLU(),
        nn.Linear(MLP_HIDDEN, num_classes),
    )


def conv_features(c: int, widths: tuple[int, int], second_padding: int = 2) -> nn.Sequential:
    """conv 5x5 'same' → pool 2 → conv 5x5 (padding ``second_padding``) → pool 2.

    ReLU follows each pooling: relu and max pooling commute, and the pooled map is 4x smaller.
    """
    return nn.Sequential(
        nn.Conv2d(c, widths[0], kernel_size=5, padding=2),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(widths[0], widths[1], kernel_size=5, padding=second_padding),
        nn.MaxPool2d(2),
        nn.ReLU(),
    )


def compute_lenet_padding(h: int, w: int) -> int:
    """LeNet-5's second convolution is 'valid' on 28x28 (14 → 10); small images keep 'same'."""
    return 0 if min(h, w) // 2 >= 10 else 2


def make_lenet(c: int, h: int, w: int, num_classes: int) -> nn.Module:
    """LeNet-5 (LeCun et al. 1998): conv 6, conv 16, dense 120, 84; 61,706 parameters on 28x28."""
    pad = compute_lenet_padding(h, w)
    side_h, side_w = (h // 2 + 2 * pad - 4) // 2, (w // 2 + 2 * pad - 4) // 2
    flat = 16 * side_h * side_w
    return nn.Sequential(
        conv_features(c, (6, 16), pad),
        nn.Flatten(),
        nn.Linear(flat, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )


def make_cnn1m(c: int, h: int, w: int, num_classes: int) -> nn.Module:
    """The FedAvg CNN (McMahan et al. 2017: conv 32, conv 64) with a CNN1M_HIDDEN dense layer."""
    flat = 64 * (h // 4) * (w // 4)
    return nn.Sequential(
        conv_features(c, (32, 64)),
        nn.Flatten(),
        nn.Linear(flat, CNN1M_HIDDEN),
        nn.ReLU(),
        nn.Linear(CNN1M_HIDDEN, num_classes),
    )
