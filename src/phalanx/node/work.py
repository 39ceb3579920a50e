"""A real peer's local computation (``protocol.peer.Work``): it trains on its own data only.

The task (``config.toml``: dataset, model, rule, seed) is public; so is its partition of a
named dataset, the root data FLTrust's reference trains on, and the initial model, which every
peer rebuilds from the seed and checks against the hash on chain. A peer keeps its own
partition (``partition = i``; or its own files) and holds out ``validation_fraction`` of it
for voting, exactly as the simulator does (``sim.peers``), so a network and a simulation of
the same configuration train the same shards with the same seeds.

A malicious peer (its index among the task's malicious peers) runs the simulator's attack
models on its own update (``attacks.poisoning``); an attack that needs the honest updates
(OMNISCIENT knowledge) falls back to what a real attacker has: its own (PARTIAL).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from phalanx.attacks.poisoning import Attack, Knowledge, craft_updates
from phalanx.errors import ConfigError, PhalanxError
from phalanx.ml.train import evaluate, set_flat_params, train_clients
from phalanx.node.blobs import BlobStore, Fetcher, fetch_model
from phalanx.rules import RuleContext
from phalanx.sim.config import SimConfig
from phalanx.sim.federation import Federation, build_federation, hold_out_validation, reference_for


class NodeWork:
    """One peer's data, model and rule context; fetches models by hash."""

    def __init__(self, task: SimConfig, index: int, store: BlobStore,
                 files: Path | None = None) -> None:
        total = task.peers + task.malformed_peers
        if not 0 <= index < total:
            raise ConfigError(f"partition={index} must be in [0, {total}) for this task")
        self.task, self.index, self.store = task, index, store
        self.fed: Federation = build_federation(task)
        rng = np.random.default_rng([task.seed, 99])  # as sim.peers.build_peer_run
        validation = hold_out_validation(self.fed, rng, task.validation_fraction)
        #: one of the experiment's broken peers (indices from ``peers`` on, as in sim.peers):
        #: it uploads garbage when it proposes, and votes on a partition's held-out data
        self.malformed = index >= task.peers
        self.shard = self.fed.shards[index % task.peers]
        self.validation = validation[index % task.peers]
        if files is not None:
            self.shard, self.validation = _own_files(files, task.validation_fraction,
                                                     self.fed.data.input_shape,
                                                     self.fed.data.num_classes)
        self.malicious = index in self.fed.malicious
        self.initial = self.fed.global_params.copy()
        self.previous_update = np.zeros_like(self.initial)
        self.net: Fetcher | None = None
        self.endpoints: Callable[[], Iterable[str]] = list
        self.n_proposers = 1

    # -- protocol.peer.Work --------------------------------------------------------------------
    def fetch(self, address: bytes) -> NDArray[np.float32] | None:
        return fetch_model(self.store, address, self.net, self.endpoints())

    def train(self, params: NDArray[np.float32], rnd: int) -> NDArray[np.float32]:
        fed, cfg = self.fed, self.task
        seed = cfg.seed * 1_000_003 + rnd * 10_007 + self.index  # sim.federation.train_updates
        update = train_clients(fed.model, params, [self.shard], fed.train_cfg, seeds=[seed],
                               method="loop")
        if self.malicious and fed.attack.attack is not Attack.NONE:
            spec = fed.attack
            if spec.knowledge is Knowledge.OMNISCIENT:
                spec = dataclasses.replace(spec, knowledge=Knowledge.PARTIAL)
            update = craft_updates(spec, update, None,
                                   rng=np.random.default_rng([cfg.seed, rnd, 2, self.index]),
                                   previous_global_update=self.previous_update,
                                   num_clients=self.n_proposers)
        return np.asarray(update[0], np.float32)

    def context(self, params: NDArray[np.float32], rnd: int) -> RuleContext:
        self.fed.global_params = np.asarray(params, np.float32)
        self.fed.previous_update = self.previous_update
        return RuleContext(dim=params.size, reference=reference_for(self.fed, rnd),
                           num_byzantine=self.task.num_malicious)

    def evaluate(self, params: NDArray[np.float32]) -> float:
        x, y = self.validation
        set_flat_params(self.fed.model, params)
        return evaluate(self.fed.model, x, y)[0]

    def moved(self, old: NDArray[np.float32], new: NDArray[np.float32]) -> None:
        """The global model moved (settled): the update the cc rule's reference is."""
        self.previous_update = (new - old).astype(np.float32)


def _own_files(path: Path, fraction: float, shape: tuple[int, int, int], classes: int
               ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(train, validation) from an ``.npz`` with ``x_train`` (N, C, H, W) and ``y_train``, of
    the task's image ``shape`` and labels in [0, ``classes``): a peer's own data trains the
    task's model, so anything else is refused before a round would fail on it."""
    try:
        with np.load(path) as z:
            x, y = torch.as_tensor(z["x_train"], dtype=torch.float32), \
                torch.as_tensor(z["y_train"], dtype=torch.long)
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"files={path}: not an .npz with x_train and y_train ({e})") from e
    if len(x) != len(y) or len(y) < 2:
        raise PhalanxError(f"files={path}: {len(x)} images and {len(y)} labels")
    if tuple(x.shape[1:]) != tuple(shape):
        raise ConfigError(f"files={path}: x_train images are {tuple(x.shape[1:])}, the task's "
                          f"model takes {tuple(shape)} (N, C, H, W)")
    if not bool(torch.isfinite(x).all()):
        raise ConfigError(f"files={path}: x_train holds NaN or infinite values")
    bad = y[(y < 0) | (y >= classes)]
    if len(bad):
        raise ConfigError(f"files={path}: label {int(bad[0])} in y_train is outside "
                          f"[0, {classes}) of the task")
    cut = max(1, int(round(fraction * len(y))))
    order = torch.as_tensor(np.random.default_rng(0).permutation(len(y)))
    return (x[order[cut:]], y[order[cut:]]), (x[order[:cut]], y[order[:cut]])
