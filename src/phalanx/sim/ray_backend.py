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
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
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

    def close(self) -> None:
        self.shard_refs.clear()
        self.model_ref = None
        if self.owns and ray.is_initialized():
            ray.shutdown()


# -- the per-peer simulator's peers on Ray actors (sim/peers.py) ----------------------------------
class Blobs:
    """The network's content-addressed blobs as an actor sees them: object refs, fetched once."""

    def __init__(self) -> None:
        self.refs: dict[bytes, Any] = {}
        self.got: dict[bytes, bytes] = {}

    def get(self, address: bytes) -> bytes | None:
        if address not in self.got and address in self.refs:
            self.got[address] = ray.get(self.refs[address])
        return self.got.get(address)


class World:
    """What ``sim.peers.SimWork`` reads of the run, inside an actor."""

    def __init__(self, validation: Any, model: torch.nn.Module) -> None:
        self.blobs = Blobs()
        self.validation = validation
        self.fed = SimpleNamespace(model=model, global_params=None)
        self.updates: dict[int, np.ndarray] = {}
        self.context: Any = None

    def context_of(self, rnd: int) -> Any:
        return self.context


class PeerShard:
    """Actor body: some peers' states, each stepped by the protocol's own functions."""

    def __init__(self, states: dict[int, Any], validation: Any, model: torch.nn.Module) -> None:
        from phalanx.sim.peers import SimWork

        torch.set_num_threads(1)
        self.world = World(validation, model)
        self.states = states
        for i, state in states.items():
            state.work = SimWork(self.world, i)  # type: ignore[arg-type]  # duck-typed run

    def begin_round(self, global_params: np.ndarray, updates: dict[int, np.ndarray],
                    context: Any) -> None:
        self.world.fed.global_params = np.array(global_params)  # writable, as in-process
        self.world.updates, self.world.context = updates, context

    def add_blobs(self, refs: dict[bytes, Any]) -> None:
        self.world.blobs.refs.update(refs)

    def event(self, refs: dict[bytes, Any], i: int, event: Any) -> Any:
        from phalanx.protocol.peer import on_event

        self.add_blobs(refs)
        return on_event(self.states[i], event)

    def events(self, refs: dict[bytes, Any], peers: Sequence[int], event: Any) -> list[Any]:
        return [self.event(refs, i, event) for i in peers]

    def messages(self, refs: dict[bytes, Any], i: int,
                 deliveries: Sequence[Any]) -> list[Any]:
        from phalanx.errors import ProtocolViolation
        from phalanx.protocol.messages import decode
        from phalanx.protocol.peer import on_message

        self.add_blobs(refs)
        out: list[Any] = []
        for d in deliveries:
            try:
                out.append(on_message(self.states[i], decode(d.payload, d.sender)))
            except ProtocolViolation as e:
                out.append({"from": e.peer, "reason": e.reason.value, "detail": e.detail})
        return out

    def outcomes(self, peers: Sequence[int]) -> dict[int, tuple[Any, Any]]:
        """Each peer's member outcome (what the driver's ``describe`` reads) and voter."""
        out: dict[int, tuple[Any, Any]] = {}
        for i in peers:
            m, v = self.states[i].member, self.states[i].voter
            member = None if m is None else SimpleNamespace(
                phase=m.phase, aborted=m.aborted, output=m.output, verdicts=dict(m.verdicts),
                revealed=dict(m.revealed), server=SimpleNamespace(cheaters=set(m.server.cheaters)))
            voter = None if v is None else SimpleNamespace(accept=v.accept)
            out[i] = (member, voter)
        return out


class PeerHost:
    """The driver's handle on the actors hosting the peers (``PeerRun.host``).

    Peers are dealt round-robin over one actor per cluster CPU. Every blob is ``ray.put`` once
    and each actor is sent the refs it has not seen; an actor steps its peers one after another,
    actors run side by side (``events``), and the driver performs the returned Actions in peer
    order, as the in-process driver does.
    """

    def __init__(self, run: Any, actors: int) -> None:
        import dataclasses

        count = max(1, min(actors, len(run.peers)))
        self.owner = [i % count for i in range(len(run.peers))]
        validation, model = ray.put(run.validation), ray.put(run.fed.model)
        # no CPU reserved: an idle actor must not keep the training tasks from being scheduled
        cls = ray.remote(num_cpus=0, max_restarts=0)(PeerShard)
        self.actors: list[Any] = [cls.remote({i: dataclasses.replace(run.peers[i], work=None)
                                   for i in range(len(run.peers)) if self.owner[i] == a},
                                  validation, model) for a in range(count)]
        self.run = run
        self.refs: dict[bytes, Any] = {}
        self.sent = [0] * count

    def new_refs(self, a: int) -> dict[bytes, Any]:
        """Refs of the blobs actor ``a`` has not been sent (blobs are only ever added)."""
        addresses = list(self.run.blobs)
        for address in addresses[len(self.refs):]:
            self.refs[address] = ray.put(self.run.blobs[address])
        fresh = {k: self.refs[k] for k in addresses[self.sent[a]:]}
        self.sent[a] = len(addresses)
        return fresh

    def get(self, futures: Any, what: str) -> Any:
        try:
            return ray.get(futures)
        except ray.exceptions.RayError as e:
            cause = getattr(e, "cause", None) or e
            raise PhalanxError(f"ray peer actor: {what}: {one_line(cause)}") from None

    def begin_round(self, run: Any, rnd: int) -> None:
        params = ray.put(run.fed.global_params)
        context = ray.put(run.context_of(rnd))
        futures = [actor.begin_round.remote(
            params, {p: u for p, u in run.updates.items() if self.owner[p] == a}, context)
            for a, actor in enumerate(self.actors)]
        self.get(futures, f"round {rnd}")

    def event(self, i: int, event: Any) -> Any:
        a = self.owner[i]
        return self.get(self.actors[a].event.remote(self.new_refs(a), i, event),
                        f"peer {i}, {type(event).__name__}")

    def events(self, event: Any, peers: Sequence[int]) -> list[Any]:
        by_actor: dict[int, list[int]] = {}
        for i in peers:
            by_actor.setdefault(self.owner[i], []).append(i)
        futures = {a: self.actors[a].events.remote(self.new_refs(a), ids, event)
                   for a, ids in by_actor.items()}
        results = {a: iter(self.get(f, f"peers {by_actor[a]}, {type(event).__name__}"))
                   for a, f in futures.items()}
        return [next(results[self.owner[i]]) for i in peers]

    def messages(self, i: int, deliveries: Sequence[Any]) -> list[Any]:
        if not deliveries:
            return []
        a = self.owner[i]
        return list(self.get(self.actors[a].messages.remote(self.new_refs(a), i,
                                                            list(deliveries)),
                             f"peer {i}, messages"))

    def sync(self, run: Any, peers: Sequence[int]) -> None:
        import dataclasses

        by_actor: dict[int, list[int]] = {}
        for i in peers:
            by_actor.setdefault(self.owner[i], []).append(i)
        for a, ids in by_actor.items():
            for i, (member, voter) in self.get(self.actors[a].outcomes.remote(ids),
                                               f"peers {ids}").items():
                run.peers[i] = dataclasses.replace(run.peers[i], member=member, voter=voter)


def host_peers(run: Any, executor: Any) -> None:
    """Move a ``sim.peers.PeerRun``'s peers onto Ray actors (``executor`` started Ray)."""
    run.host = PeerHost(run, executor.cpus if isinstance(executor, RayExecutor) else 1)
