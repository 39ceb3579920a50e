"""Train k clients at once: ``torch.func.vmap`` over stacked per-client parameters.

Each client keeps its own parameters, momentum buffer and minibatch order (the same
``compute_batches`` draw as :func:`phalanx.ml.train.local_train`). Clients with fewer steps are
padded: a padded example has weight 0, and a client whose steps are done has its parameters and
momentum frozen, so every client follows exactly the SGD trajectory of the sequential loop (up to
float summation order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn
from torch.func import functional_call, grad, vmap

from phalanx.ml.train import Shard, TrainConfig, compute_batches, set_flat_params

Params = dict[str, torch.Tensor]


def train_clients_vmap(
    model: nn.Module,
    global_params: NDArray[np.floating],
    shards: Sequence[Shard],
    cfg: TrainConfig,
    *,
    seeds: Sequence[int],
) -> NDArray[np.float32]:
    """``(k, d)`` updates; same contract as :func:`phalanx.ml.train.train_clients`."""
    set_flat_params(model, global_params)
    model.train()
    k = len(shards)
    base = {name: p.detach() for name, p in model.named_parameters()}
    params = {n: p.unsqueeze(0).expand(k, *p.shape).clone() for n, p in base.items()}
    momentum = {n: torch.zeros_like(p) for n, p in params.items()}
    x_all = torch.cat([x for x, _ in shards])
    y_all = torch.cat([y for _, y in shards])
    index, weight = compute_schedule(shards, cfg, seeds)
    step_grad = vmap(grad(make_loss(model)))
    for s in range(index.shape[0]):
        idx = index[s].reshape(-1)
        xb = x_all[idx].view(k, -1, *x_all.shape[1:])
        yb = y_all[idx].view(k, -1)
        grads = step_grad(params, xb, yb, weight[s])
        active = weight[s].sum(dim=1) > 0
        apply_sgd(params, momentum, grads, cfg, None if bool(active.all()) else active)
    flat = torch.cat([params[n].reshape(k, -1) for n in base], dim=1)
    start = torch.from_numpy(np.asarray(global_params, dtype=np.float32))
    return (flat - start).numpy().astype(np.float32, copy=False)


def make_loss(model: nn.Module):  # type: ignore[no-untyped-def]  # returns a torch.func closure
    """Weighted cross-entropy of one client's batch as a function of its parameters."""

    def loss(params: Params, xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, params, (xb,))
        return (F.cross_entropy(logits, yb, reduction="none") * wb).sum()

    return loss


def compute_schedule(
    shards: Sequence[Shard], cfg: TrainConfig, seeds: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Global example indices ``(S, k, B)`` and weights ``(S, k, B)`` of every step.

    Weight ``1/len(batch)`` on a real example (the mean of the loop's loss) and 0 on padding.
    """
    k, b = len(shards), cfg.batch_size
    per_client: list[list[torch.Tensor]] = []
    for (x, _), seed in zip(shards, seeds, strict=True):
        generator = torch.Generator().manual_seed(int(seed))
        per_client.append(compute_batches(x.shape[0], cfg, generator))
    steps = max(len(batches) for batches in per_client)
    index = torch.zeros((steps, k, b), dtype=torch.int64)
    weight = torch.zeros((steps, k, b), dtype=torch.float32)
    offset = 0
    for i, batches in enumerate(per_client):
        for s, batch in enumerate(batches):
            index[s, i, : batch.shape[0]] = batch + offset
            weight[s, i, : batch.shape[0]] = 1.0 / batch.shape[0]
        offset += shards[i][0].shape[0]
    return index, weight


def apply_sgd(
    params: Params,
    momentum: Params,
    grads: Params,
    cfg: TrainConfig,
    active: torch.Tensor | None,
) -> None:
    """One ``torch.optim.SGD`` step per client; clients outside ``active`` stay unchanged."""
    with torch.no_grad():
        for name, p in params.items():
            g = grads[name]
            if cfg.weight_decay:
                g = g.add(p, alpha=cfg.weight_decay)
            buf = momentum[name].mul(cfg.momentum).add_(g)
            if active is None:
                momentum[name] = buf
                p.sub_(buf, alpha=cfg.lr)
            else:
                mask = active.view(-1, *([1] * (p.dim() - 1)))
                momentum[name] = torch.where(mask, buf, momentum[name])
                p.sub_(torch.where(mask, buf, torch.zeros_like(buf)), alpha=cfg.lr)
