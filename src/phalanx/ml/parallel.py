"""Train clients in forked worker processes, one torch thread each (``method="fork"``).

Small convolutions scale poorly over torch's intra-op threads (docs/ml.md: 1.4x from 2 threads
on LeNet-5), while independent clients scale perfectly over processes. Workers are forked, so they
inherit the model, the global parameters and the shards without any pickling, and write their
updates straight into a shared-memory output matrix. Each client's math is exactly that of
:func:`phalanx.ml.train.local_train`; only the thread count (and so float summation order inside
oneDNN kernels) can differ from the in-process loop.

Fork is only safe when no other thread can hold a lock the child needs: ``method="auto"`` uses
it only when :func:`phalanx.ml.train.is_fork_safe` (main thread, other threads daemon helpers).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from phalanx.errors import PhalanxError
from phalanx.ml.train import (
    Shard,
    TrainConfig,
    get_available_cpus,
    local_train,
    set_flat_params,
    train_clients_loop,
)


def train_clients_fork(
    model: nn.Module,
    global_params: NDArray[np.floating],
    shards: Sequence[Shard],
    cfg: TrainConfig,
    *,
    seeds: Sequence[int],
    workers: int | None = None,
    inner: str = "loop",
) -> NDArray[np.float32]:
    """``(k, d)`` updates trained by ``workers`` forked processes (default: available CPUs).

    ``inner`` is how each worker trains its clients: ``loop`` or ``vmap``.
    """
    k = len(shards)
    count = min(workers or get_available_cpus(), k)
    if count <= 1 or "fork" not in mp.get_all_start_methods():
        return train_clients_loop(model, global_params, shards, cfg, seeds=seeds)
    d = sum(p.numel() for p in model.parameters())
    out = torch.empty((k, d), dtype=torch.float32)
    out.share_memory_()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
    ctx = mp.get_context("fork")
    procs = [
        ctx.Process(
            target=run_worker,
            args=(model, global_params, shards, cfg, seeds, chunk, out, inner),
            daemon=True,
        )
        for chunk in assign_clients([int(x.shape[0]) for x, _ in shards], count)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise PhalanxError(f"training workers exited with codes {failed}")
    set_flat_params(model, global_params)
    updates: NDArray[np.float32] = out.numpy().copy()
    return updates


def assign_clients(sizes: Sequence[int], workers: int) -> list[list[int]]:
    """Longest-first greedy assignment of clients (by example count) to the least-loaded worker."""
    loads = [0] * workers
    chunks: list[list[int]] = [[] for _ in range(workers)]
    for i in sorted(range(len(sizes)), key=lambda j: -sizes[j]):
        w = loads.index(min(loads))
        chunks[w].append(i)
        loads[w] += sizes[i]
    return [c for c in chunks if c]


def run_worker(
    model: nn.Module,
    global_params: NDArray[np.floating],
    shards: Sequence[Shard],
    cfg: TrainConfig,
    seeds: Sequence[int],
    chunk: Sequence[int],
    out: torch.Tensor,
    inner: str = "loop",
) -> None:
    """Child process body: train the clients of ``chunk`` on one thread into ``out``."""
    torch.set_num_threads(1)
    try:
        if inner == "vmap":
            from phalanx.ml.batched import train_clients_vmap

            rows = list(chunk)
            updates = train_clients_vmap(model, global_params, [shards[i] for i in rows], cfg,
                                         seeds=[int(seeds[i]) for i in rows])
            out[torch.tensor(rows)] = torch.from_numpy(updates)
            return
        for i in chunk:
            set_flat_params(model, global_params)
            update = local_train(model, *shards[i], cfg, seed=int(seeds[i]))
            out[i].copy_(torch.from_numpy(update))
    except BaseException:
        import traceback

        # raw write: a lock on sys.stderr may have been held by another thread at fork time
        os.write(2, traceback.format_exc().encode(errors="replace"))
        os._exit(1)
