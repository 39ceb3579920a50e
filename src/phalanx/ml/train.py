"""Local training (SGD with momentum), evaluation, and flat parameter vectors.

Updates travel as flat float32 numpy vectors: ``update = local params − global params`` in the
order of ``model.parameters()``. :func:`train_clients` is the simulator's hot path: it trains k
clients from the same global parameters one after the other (``loop``), all at once with
``torch.func.vmap`` over stacked per-client parameters (``vmap``), or split over forked one-thread
workers (``fork``, ``fork-vmap``); every method computes the same per-client math, and ``auto``
picks the fastest measured one (docs/ml.md, "Batched training").
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from phalanx.errors import ConfigError

FloatVec = NDArray[np.float32]
Shard = tuple[torch.Tensor, torch.Tensor]

#: Images with fewer pixels count as small: vmap beats separate convolutions there (docs/ml.md).
SMALL_IMAGE_PIXELS = 256
#: Below this many examples x parameters per epoch, forking costs more than it saves (docs/ml.md).
FORK_MIN_WORK = 10**8
#: train_clients methods; "auto" picks the faster one measured in docs/ml.md.
TRAIN_METHODS: tuple[str, ...] = ("auto", "loop", "vmap", "fork", "fork-vmap")


@dataclass(frozen=True)
class TrainConfig:
    """Local SGD: ``epochs`` passes over the client's data in shuffled minibatches.

    The optimizer is ``torch.optim.SGD(lr, momentum, weight_decay)`` (no dampening, no Nesterov),
    with a fresh momentum buffer for every local training run.
    """

    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs={self.epochs} must be >= 1")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size} must be >= 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr={self.lr} must be a finite number > 0")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise ConfigError(f"momentum={self.momentum} must be in [0, 1)")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay={self.weight_decay} must be >= 0")


def set_torch_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op thread count (global state: the simulator calls this once).

    ``None`` uses the number of CPUs this process may run on. Returns the count set.
    """
    if num_threads is None:
        num_threads = get_available_cpus()
    if num_threads < 1:
        raise ConfigError(f"num_threads={num_threads} must be >= 1")
    torch.set_num_threads(num_threads)
    return num_threads


def get_available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def get_flat_params(model: nn.Module) -> FloatVec:
    """All parameters concatenated into one new float32 vector."""
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return flat.to(torch.float32).numpy().copy()


def set_flat_params(model: nn.Module, vec: NDArray[np.floating]) -> None:
    """Overwrite the parameters of ``model`` in place from a flat vector."""
    arr = np.asarray(vec, dtype=np.float32)
    expected = sum(p.numel() for p in model.parameters())
    if arr.ndim != 1 or arr.shape[0] != expected:
        raise ConfigError(f"flat params have shape {arr.shape}, expected ({expected},)")
    source = torch.from_numpy(arr)
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(source[offset : offset + n].view_as(p))
            offset += n


def compute_batches(n: int, cfg: TrainConfig, generator: torch.Generator) -> list[torch.Tensor]:
    """The index minibatches of one local run: per epoch a fresh permutation cut into batches."""
    batches: list[torch.Tensor] = []
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=generator)
        batches.extend(torch.split(perm, cfg.batch_size))
    return batches


def local_train(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, *, seed: int
) -> FloatVec:
    """Train ``model`` in place on ``(x, y)`` from its current parameters; return the update.

    ``seed`` fixes the minibatch order. The caller resets the parameters between clients.
    """
    validate_shard(x, y)
    start = get_flat_params(model)
    generator = torch.Generator().manual_seed(seed)
    with channels_last(model, x) as x_fast:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        model.train()
        for idx in compute_batches(x.shape[0], cfg, generator):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_fast[idx]), y[idx])
            torch.autograd.backward(loss)
            optimizer.step()
    return get_flat_params(model) - start


def has_conv(model: nn.Module) -> bool:
    """True when ``model`` has a 2-D convolution."""
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


@contextmanager
def channels_last(model: nn.Module, x: torch.Tensor) -> Iterator[torch.Tensor]:
    """Run a conv model and its images in NHWC memory layout, then restore NCHW parameters.

    oneDNN convolutions are faster on channels-last tensors (docs/ml.md: 1.2x for cnn, 1.6x for
    cnn1m per step); the values are unchanged, only the strides differ. The parameters go back to
    the default layout on exit, so callers always see contiguous tensors.
    """
    if not has_conv(model):
        yield x
        return
    set_memory_format(model, torch.channels_last)
    try:
        yield x.contiguous(memory_format=torch.channels_last)
    finally:
        set_memory_format(model, torch.contiguous_format)


def set_memory_format(model: nn.Module, memory_format: torch.memory_format) -> None:
    """Re-lay the 4-D parameters (conv kernels) of ``model`` in ``memory_format``, in place."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 4:
                p.data = p.data.contiguous(memory_format=memory_format)


def validate_shard(x: torch.Tensor, y: torch.Tensor) -> None:
    """A non-empty batch of images ``(N, C, H, W)`` with N int64 labels."""
    if x.ndim != 4 or x.shape[0] == 0:
        raise ConfigError(f"x has shape {tuple(x.shape)}, expected non-empty (N, C, H, W)")
    if y.shape != (x.shape[0],):
        raise ConfigError(f"y has shape {tuple(y.shape)}, expected ({x.shape[0]},)")


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024
) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy loss)`` of ``model`` on ``(x, y)``."""
    validate_shard(x, y)
    model.eval()
    correct = 0
    loss_sum = 0.0
    with torch.no_grad(), channels_last(model, x) as x_fast:
        for start in range(0, x.shape[0], batch_size):
            logits = model(x_fast[start : start + batch_size])
            target = y[start : start + batch_size]
            loss_sum += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(dim=1) == target).sum())
    n = x.shape[0]
    return correct / n, loss_sum / n


def train_clients(
    model: nn.Module,
    global_params: NDArray[np.floating],
    shards: Sequence[Shard],
    cfg: TrainConfig,
    *,
    seeds: Sequence[int],
    method: str = "auto",
    workers: int | None = None,
) -> NDArray[np.float32]:
    """``(k, d)`` float32 updates of k clients, each trained from ``global_params`` on its shard.

    Client i trains exactly as ``local_train(model, *shards[i], cfg, seed=seeds[i])`` would from
    ``global_params``. ``model`` ends with ``global_params`` loaded. Methods: ``loop`` (one after
    the other), ``vmap`` (all at once, :mod:`phalanx.ml.batched`), ``fork`` / ``fork-vmap``
    (``workers`` forked processes, :mod:`phalanx.ml.parallel`, each looping or vmapping over its
    clients), ``auto`` (:func:`choose_method`; the measurements are in docs/ml.md).
    """
    if len(seeds) != len(shards):
        raise ConfigError(f"len(seeds)={len(seeds)} != len(shards)={len(shards)}")
    if method not in TRAIN_METHODS:
        raise ConfigError(f"method={method!r} is unknown; choose one of {TRAIN_METHODS}")
    for x, y in shards:
        validate_shard(x, y)
    d = sum(p.numel() for p in model.parameters())
    if not shards:
        return np.zeros((0, d), np.float32)
    if method == "auto":
        method = choose_method(model, shards)
    if method == "vmap":
        from phalanx.ml.batched import train_clients_vmap

        return train_clients_vmap(model, global_params, shards, cfg, seeds=seeds)
    if method in ("fork", "fork-vmap"):
        from phalanx.ml.parallel import train_clients_fork

        inner = "vmap" if method == "fork-vmap" else "loop"
        return train_clients_fork(model, global_params, shards, cfg, seeds=seeds, workers=workers,
                                  inner=inner)
    return train_clients_loop(model, global_params, shards, cfg, seeds=seeds)


def choose_method(model: nn.Module, shards: Sequence[Shard]) -> str:
    """The fastest equivalent method measured on 2 CPU cores (docs/ml.md, "Batched training").

    Forked workers with one torch thread each are used when the round is big enough
    (FORK_MIN_WORK), :func:`is_fork_safe`, and there are >= 2 clients and >= 2 CPUs: independent
    clients scale over processes, while two OpenMP threads on one small model gain little on a
    quiet machine and collapse on a busy one. Workers vmap over their clients on small
    (< 256 pixel) images and loop on larger ones (where a one-thread loop matched or beat vmap).
    In-process, vmap is used for small images and models without convolutions; for convolutions
    on larger images oneDNN's grouped kernels (what vmap makes of per-client convolutions) are
    slower than separate ones, so clients train one after another.
    """
    height, width = shards[0][0].shape[-2:]
    small = height * width < SMALL_IMAGE_PIXELS
    if compute_work(model, shards) >= FORK_MIN_WORK and len(shards) >= 2:
        if get_available_cpus() >= 2 and is_fork_safe():
            return "fork-vmap" if small else "fork"
    return "vmap" if small or not has_conv(model) else "loop"


def compute_work(model: nn.Module, shards: Sequence[Shard]) -> int:
    """Examples of one epoch times parameters: a proxy for the cost of one local epoch."""
    return sum(int(x.shape[0]) for x, _ in shards) * sum(p.numel() for p in model.parameters())


def is_fork_safe() -> bool:
    """True when this is the main thread and every other Python thread is a daemon helper.

    A forked child only runs torch and numpy (torch resets its thread pools at fork) and reports
    errors with a raw ``os.write``, so helper threads such as a progress bar's refresher cannot
    hold a lock the child needs. Non-daemon threads (servers, pools) make ``auto`` use ``loop``.
    """
    main = threading.main_thread()
    if threading.current_thread() is not main:
        return False
    return all(t.daemon for t in threading.enumerate() if t is not main)


def train_clients_loop(
    model: nn.Module,
    global_params: NDArray[np.floating],
    shards: Sequence[Shard],
    cfg: TrainConfig,
    *,
    seeds: Sequence[int],
) -> NDArray[np.float32]:
    """:func:`train_clients` one client after the other with :func:`local_train`."""
    out = np.empty((len(shards), sum(p.numel() for p in model.parameters())), np.float32)
    for i, ((x, y), seed) in enumerate(zip(shards, seeds, strict=True)):
        set_flat_params(model, global_params)
        out[i] = local_train(model, x, y, cfg, seed=int(seed))
    set_flat_params(model, global_params)
    return out
