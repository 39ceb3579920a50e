"""Where the peers' local work runs: this process, or a Ray cluster (issue 14, docs/scale.md).

The seam is the batch of one round's local training (``sim.federation.train_updates``): the
driver hands an :class:`Executor` the global model and the proposers' shards and gets their
``(k, d)`` updates back, whatever the executor. Both executors compute every client exactly as
``ml.train.train_clients`` does in-process on one torch thread (loop and vmap results do not
depend on how the clients are batched), so a run's metrics do not depend on the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from phalanx.errors import ConfigError
from phalanx.ml.train import Shard, TrainConfig, train_clients
from phalanx.sim.config import BACKENDS

RAY_MISSING = "backend='ray' needs Ray: pip install 'phalanx[ray]'"


@dataclass(frozen=True)
class TrainJob:
    """One round's local training: ``peers[i]`` trains ``shards[i]`` with ``seeds[i]``."""

    rnd: int
    model: torch.nn.Module
    global_params: np.ndarray
    peers: Sequence[int]
    shards: Sequence[Shard]
    cfg: TrainConfig
    seeds: Sequence[int]


class Executor(Protocol):
    """Runs the peers' local work; ``close`` releases what the executor started."""

    name: str

    def train(self, job: TrainJob) -> np.ndarray: ...

    def close(self) -> None: ...


class InProcess:
    """Train in this process (``train_clients``'s automatic method: loop, vmap or fork)."""

    name = "inprocess"

    def train(self, job: TrainJob) -> np.ndarray:
        return train_clients(job.model, job.global_params, job.shards, job.cfg, seeds=job.seeds)

    def close(self) -> None:
        pass


def make_executor(backend: str, address: str | None = None, cpus: int = 0) -> Executor:
    """The executor of ``backend``; Ray is imported only when asked for."""
    if backend == "inprocess":
        return InProcess()
    if backend != "ray":
        raise ConfigError(f"backend={backend!r} is unknown; choose one of {BACKENDS}")
    try:
        import ray  # noqa: F401
    except ImportError as e:
        raise ConfigError(RAY_MISSING) from e
    from phalanx.sim.ray_backend import RayExecutor

    return RayExecutor(address=address, cpus=cpus)
