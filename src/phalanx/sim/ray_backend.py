"""The Ray executor: local training as Ray tasks over the object store (docs/scale.md).

Without an address it starts a local instance with ``cpus`` CPUs and shuts it down on
``close`` (the run's end, its failure, or Ctrl-C); with one (``auto`` or ``HOST:PORT``) it joins
that cluster and leaves it running. An instance already initialised by the caller is used and
left alone.

Payloads go by reference: each peer's shard is ``ray.put`` once per run, the model once, the
global parameters once per round; a task receives refs and Ray resolves them on its node. One
task trains a batch of peers (longest-first over the cluster's CPUs) on one torch thread with
the same method ``train_clients`` would choose in-process, so its rows are bit-identical to
the in-process ones. A failing task is one ``PhalanxError`` naming the round and the peer(s).
The per-peer simulator's peers (``sim/peers.py``) are hosted on actors by ``host_peers``
(``sim/ray_peers.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import ray
import torch

from phalanx.errors import PhalanxError
from phalanx.ml.parallel import assign_clients
from phalanx.ml.train import Shard, TrainConfig, choose_method, train_clients, validate_shard
from phalanx.sim.executor import TrainJob


class PeerTaskError(PhalanxError):
    """A peer's work failed on a Ray worker."""


def train_batch(model: torch.nn.Module, params: np.ndarray, cfg: TrainConfig, method: str,
                rnd: int, peers: Sequence[int], seeds: Sequence[int],
                *shards: Shard) -> np.ndarray:
    """Task body: ``peers``' updates (rows in order), trained on one thread."""
    torch.set_num_threads(1)
    params = np.array(params)  # the object store's copy is read-only
    for peer, (x, y) in zip(peers, shards, strict=True):
        try:
            validate_shard(x, y)
        except Exception as e:
            raise PeerTaskError(f"peer {peer}, round {rnd}: {one_line(e)}") from None
    try:
        return train_clients(model, params, list(shards), cfg, seeds=seeds, method=method)
    except Exception as e:
        failure = e
    # find the peer that fails alone (only on failure: the batch's cost once more at most)
    for peer, seed, shard in zip(peers, seeds, shards, strict=True):
        try:
            train_clients(model, params, [shard], cfg, seeds=[seed], method=method)
        except Exception as e:
            raise PeerTaskError(f"peer {peer}, round {rnd}: {one_line(e)}") from None
    raise PeerTaskError(f"peers {list(peers)}, round {rnd}: {one_line(failure)}") from None


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


class RayExecutor:
    """``Executor`` over Ray tasks (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str | None = None, cpus: int = 0) -> None:
        self.owns = not ray.is_initialized()
        if self.owns:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "logging_level": "ERROR"}
            if address is not None:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=cpus or None, **options)
        self.task = ray.remote(num_cpus=1, max_retries=0)(train_batch)
        self.shard_refs: dict[int, tuple[Shard, Any]] = {}
        self.model_ref: tuple[torch.nn.Module, Any] | None = None
        self.hosts: list[Any] = []

    @property
    def cpus(self) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]

    def shard_ref(self, peer: int, shard: Shard) -> Any:
        """The shard's object ref, put once (again only if the peer's shard was replaced)."""
        cached = self.shard_refs.get(peer)
        if cached is None or cached[0][0] is not shard[0] or cached[0][1] is not shard[1]:
            cached = self.shard_refs[peer] = (shard, ray.put(shard))
        return cached[1]

    def model(self, model: torch.nn.Module) -> Any:
        if self.model_ref is None or self.model_ref[0] is not model:
            self.model_ref = (model, ray.put(model))
        return self.model_ref[1]

    def train(self, job: TrainJob) -> np.ndarray:
        d = job.global_params.size
        k = len(job.shards)
        if not k:
            return np.zeros((0, d), np.float32)
        method = "vmap" if choose_method(job.model, job.shards).endswith("vmap") else "loop"
        params = ray.put(np.asarray(job.global_params))
        model = self.model(job.model)
        sizes = [int(x.shape[0]) for x, _ in job.shards]
        chunks = [sorted(c) for c in assign_clients(sizes, min(self.cpus, k))]
        futures = [self.task.remote(model, params, job.cfg, method, job.rnd,
                                    [job.peers[i] for i in c], [job.seeds[i] for i in c],
                                    *(self.shard_ref(job.peers[i], job.shards[i]) for i in c))
                   for c in chunks]
        out = np.empty((k, d), np.float32)
        for chunk, future in zip(chunks, futures, strict=True):
            out[chunk] = self.get(future, job.rnd, [job.peers[i] for i in chunk])
        return out

    def get(self, future: Any, rnd: int, peers: Sequence[int]) -> Any:
        """``ray.get`` with a worker's failure as one line naming the peer(s) and round."""
        try:
            return ray.get(future)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(e.cause, BaseException) else e
            if isinstance(cause, PeerTaskError):
                raise PhalanxError(f"ray worker: {cause}") from None
            raise PhalanxError(f"ray worker: peers {list(peers)}, round {rnd}: "
                               f"{one_line(cause)}") from None
        except ray.exceptions.RayError as e:
            raise PhalanxError(f"ray: peers {list(peers)}, round {rnd}: {one_line(e)}") from None

    def host_peers(self, run: Any) -> Any:
        """Host a ``sim.peers.PeerRun``'s peers on one actor per cluster CPU
        (``sim.ray_peers``; called by ``build_peer_run``)."""
        from phalanx.sim.ray_peers import PeerHost

        host = PeerHost(run, self.cpus)
        self.hosts.append(host)
        return host

    def close(self) -> None:
        for host in self.hosts:
            if ray.is_initialized():
                host.close()
        self.hosts = []
        self.shard_refs.clear()
        self.model_ref = None
        if self.owns and ray.is_initialized():
            ray.shutdown()

