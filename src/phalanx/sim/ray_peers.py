"""The per-peer simulator's peers on Ray actors (issue 14; docs/scale.md "What runs where").

Each actor hosts some peers' ``protocol.peer.PeerState`` and steps them with the protocol's own
``on_event`` / ``on_message``; the driver (``sim.peers``) keeps the network, the chain and the
clock. The seam is the protocol's message boundary: an actor receives events and the encoded
messages the loopback transport admitted, and returns each step's ``Actions`` (messages, blobs,
transactions, notes), which the driver performs in exactly the in-process order.

Same values as in-process, whatever Ray's scheduling:

- A step reads only its own peer's state, the event or message, and blobs that existed before
  the step's sweep began (the round's model); so the steps of different peers may run at the
  same time on different actors, and the driver still performs their ``Actions`` in peer order.
- The pump is the in-process pump pipelined: a sweep first sends every peer the messages
  queued before it (concurrently), then, in peer order, performs peer ``i``'s results and sends
  it what the peers before it sent it during the sweep (a second call, processed after the
  first). Every peer sees the same messages in the same order as in-process, and every
  ``perform`` happens in the same order, so the chain, the refusals and the notes are identical.
- The round's public rule context is the driver's ``PeerRun.context_of`` for the round the
  peers ask for (``RoundView.round``), shipped with the round's ``RoundOpened``.
- An actor runs with the driver's torch and BLAS thread counts (float reductions sum in the
  same order), e.g. a voter's evaluation.

By reference: the validation sets and the model are ``ray.put`` once; every blob (models,
candidate results) once, each actor sent only the refs it has not seen. The peers' keys and
secrets cross Ray's object store once, when the actors are made (one operator simulates every
peer; on a cluster, Ray's own transport carries them: configure Ray's TLS if that matters).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import ray
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from phalanx.errors import PhalanxError, ProtocolViolation
from phalanx.protocol.messages import decode
from phalanx.protocol.peer import RoundOpened, on_event, on_message
from phalanx.sim.ray_backend import one_line


class PeerStepError(PhalanxError):
    """A hosted peer's protocol step failed on its actor (names the peer)."""


def guarded(i: int, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` for peer ``i``; an unexpected failure raised as one line naming it."""
    try:
        return fn(*args)
    except ProtocolViolation:
        raise
    except Exception as e:
        raise PeerStepError(f"peer {i}: {one_line(e)}") from None


class ActorBlobs:
    """The network's content-addressed blobs as an actor sees them: refs, each fetched once a
    round."""

    def __init__(self) -> None:
        self.refs: dict[bytes, Any] = {}
        self.got: dict[bytes, bytes] = {}

    def get(self, address: bytes) -> bytes | None:
        if address not in self.got and address in self.refs:
            self.got[address] = ray.get(self.refs[address])
        return self.got.get(address)


class ActorWorld:
    """What ``sim.peers.SimWork`` reads of the run, inside an actor."""

    def __init__(self, validation: Any, model: torch.nn.Module) -> None:
        self.blobs = ActorBlobs()
        self.validation = validation
        self.fed = SimpleNamespace(model=model, global_params=None)
        self.updates: dict[int, np.ndarray] = {}
        self.round: int | None = None
        self.context: Any = None

    def context_of(self, rnd: int) -> Any:
        if rnd != self.round:
            raise PhalanxError(f"the rule context of round {rnd} was asked for in round "
                               f"{self.round}")
        return self.context


def member_outcome(m: Any) -> Any:
    """What the driver reads of a member (``sim.peers._member_done`` and ``describe``)."""
    if m is None:
        return None
    return SimpleNamespace(phase=m.phase, aborted=m.aborted, output=m.output,
                           verdicts=dict(m.verdicts), revealed=dict(m.revealed),
                           zero_trust=set(m.zero_trust),
                           server=SimpleNamespace(cheaters=set(m.server.cheaters)))


class PeerActor:
    """Actor body: some peers' states, each stepped by the protocol's own functions."""

    def __init__(self, states: dict[int, Any], validation: Any, model: torch.nn.Module,
                 torch_threads: int, blas_threads: dict[str, int]) -> None:
        from phalanx.sim.peers import SimWork

        match_threads(torch_threads, blas_threads)
        self.world = ActorWorld(validation, model)
        self.states = states
        for i, state in states.items():
            state.work = SimWork(self.world, i)  # type: ignore[arg-type]  # a duck-typed run

    def threads(self) -> tuple[int, dict[str, int]]:
        """The thread counts this actor runs with (for the tests)."""
        return torch.get_num_threads(), blas_counts()

    def begin_round(self, rnd: int, global_params: np.ndarray, updates: dict[int, np.ndarray],
                    context: Any) -> None:
        self.world.fed.global_params = np.array(global_params)  # writable, as in-process
        self.world.updates, self.world.round, self.world.context = updates, rnd, context
        self.world.blobs.got.clear()

    def events(self, refs: dict[bytes, Any], peers: Sequence[int], event: Any) -> list[Any]:
        self.world.blobs.refs.update(refs)
        return [guarded(i, on_event, self.states[i], event) for i in peers]

    def messages(self, refs: dict[bytes, Any], i: int,
                 deliveries: Sequence[Any]) -> list[Any]:
        """Peer ``i``'s steps on ``deliveries`` in order: Actions, or a refusal."""
        self.world.blobs.refs.update(refs)
        out: list[Any] = []
        for d in deliveries:
            try:
                out.append(guarded(i, step_message, self.states[i], d))
            except ProtocolViolation as e:
                out.append({"from": e.peer, "reason": e.reason.value, "detail": e.detail})
        return out

    def set_behaviour(self, i: int, behaviour: Any) -> None:
        self.states[i].behaviour = behaviour

    def outcomes(self, peers: Sequence[int]) -> dict[int, tuple[Any, Any]]:
        """Each peer's member outcome and voter ballot, as the driver reads them."""
        out: dict[int, tuple[Any, Any]] = {}
        for i in peers:
            state = self.states[i]
            voter = None if state.voter is None else SimpleNamespace(accept=state.voter.accept)
            out[i] = (member_outcome(state.member), voter)
        return out


def step_message(state: Any, d: Any) -> Any:
    return on_message(state, decode(d.payload, d.sender))


def blas_counts() -> dict[str, int]:
    """This process's thread count of each BLAS library loaded, by its prefix (threadpoolctl)."""
    return {str(p["prefix"]): int(p["num_threads"]) for p in threadpool_info()
            if p.get("user_api") == "blas"}


def match_threads(torch_threads: int, blas: dict[str, int]) -> None:
    """Run this process with the driver's thread counts: torch's, each BLAS library's already
    loaded, and (through the environment) those loaded later; Ray starts a worker with one."""
    n = str(max(blas.values(), default=torch_threads))
    os.environ.update(OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n)
    torch.set_num_threads(torch_threads)
    threadpool_limits(limits=blas)


class PeerHost:
    """The driver's handle on the actors hosting a ``sim.peers.PeerRun``'s peers
    (``PeerRun.host``): see the module docstring."""

    def __init__(self, run: Any, actors: int) -> None:
        count = max(1, min(actors, len(run.peers)))
        self.owner = [i % count for i in range(len(run.peers))]
        validation, model = ray.put(run.validation), ray.put(run.fed.model)
        # no CPU reserved: an idle actor must not keep the training tasks from being scheduled
        torch_threads, blas = torch.get_num_threads(), blas_counts()
        cls = ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0)(PeerActor)
        self.actors: list[Any] = [
            cls.remote({i: dataclasses.replace(run.peers[i], work=None)
                        for i in range(len(run.peers)) if self.owner[i] == a},
                       validation, model, torch_threads, blas)
            for a in range(count)]
        self.threads()  # wait until every actor runs: its start-up is the run's setup
        self.run = run
        self.refs: dict[bytes, Any] = {}
        self.sent = [0] * count
        #: the protocol round the peers are in (``RoundView.round``), once one opened
        self.round: int | None = None

    # -- plumbing ------------------------------------------------------------------------------
    def new_refs(self, a: int) -> dict[bytes, Any]:
        """Refs of the blobs actor ``a`` has not been sent (blobs are only ever added)."""
        addresses = list(self.run.blobs)
        for address in addresses[len(self.refs):]:
            self.refs[address] = ray.put(self.run.blobs[address])
        fresh = {k: self.refs[k] for k in addresses[self.sent[a]:]}
        self.sent[a] = len(addresses)
        return fresh

    def get(self, futures: Any, who: str, what: str) -> Any:
        """``ray.get`` with an actor's failure as one line naming the peer(s) (``who``) and
        what they were doing."""
        try:
            return ray.get(futures)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(e.cause, BaseException) else e
            if isinstance(cause, PeerStepError):  # "peer i: ...": the one that failed
                who, _, text = str(cause).partition(": ")
                raise PhalanxError(f"ray peer actor: {who}, {what}: {text}") from None
            raise PhalanxError(f"ray peer actor: {who}, {what}: {one_line(cause)}") from None
        except ray.exceptions.RayError as e:
            raise PhalanxError(f"ray peer actor: {who}, {what}: {one_line(e)}") from None

    def by_actor(self, peers: Sequence[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i in peers:
            out.setdefault(self.owner[i], []).append(i)
        return out

    def round_label(self) -> str:
        return "before the first round, " if self.round is None else (
            f"ledger round {self.round}, ")

    # -- the seam of sim/peers.py --------------------------------------------------------------
    def begin_round(self, rnd: int) -> None:
        """Ship the round's global model, proposers' updates and rule context."""
        run = self.run
        self.round = rnd
        params = ray.put(run.fed.global_params)
        context = ray.put(run.context_of(rnd))
        futures = [actor.begin_round.remote(
            rnd, params, {p: u for p, u in run.updates.items() if self.owner[p] == a}, context)
            for a, actor in enumerate(self.actors)]
        self.get(futures, "every peer", f"ledger round {rnd}, round data")

    def events(self, event: Any, peers: Sequence[int]) -> list[Any]:
        """Every listed peer's step on ``event`` (side by side), in ``peers`` order."""
        if isinstance(event, RoundOpened):
            self.begin_round(event.view.round)
        groups = self.by_actor(peers)
        futures = {a: self.actors[a].events.remote(self.new_refs(a), ids, event)
                   for a, ids in groups.items()}
        label = f"{self.round_label()}{type(event).__name__}"
        results = {a: iter(self.get(f, f"peers {groups[a]}", label))
                   for a, f in futures.items()}
        return [next(results[self.owner[i]]) for i in peers]

    def send(self, i: int, deliveries: Sequence[Any]) -> Any:
        a = self.owner[i]
        return self.actors[a].messages.remote(self.new_refs(a), i, list(deliveries))

    def pump(self, perform: Any) -> int:
        """Deliver messages until none is in flight, as ``sim.peers.pump`` does (pipelined:
        see the module docstring); returns how many were processed."""
        run = self.run
        done = 0
        while True:
            moved = 0
            early: dict[int, Any] = {}
            for i, ep in enumerate(run.endpoints):  # what was in flight when the sweep began
                deliveries = ep.receive()
                if deliveries:
                    moved += len(deliveries)
                    early[i] = self.send(i, deliveries)
            for i, ep in enumerate(run.endpoints):
                late = ep.receive()  # what the peers before i sent it during this sweep
                moved += len(late)
                late_future = self.send(i, late) if late else None
                for future in (early.get(i), late_future):
                    if future is None:
                        continue
                    for acts in self.get(future, f"peer {i}", f"{self.round_label()}messages"):
                        if isinstance(acts, dict):
                            run.refused.append({"peer": i, **acts})
                        else:
                            perform(run, i, acts)
            done += moved
            if not moved:
                return done

    def set_behaviour(self, i: int, behaviour: Any) -> None:
        self.get(self.actors[self.owner[i]].set_behaviour.remote(i, behaviour),
                 f"peer {i}", "behaviour")

    def sync(self, peers: Sequence[int]) -> None:
        """Bring the listed peers' member and voter outcomes to the driver's copies."""
        futures = {a: self.actors[a].outcomes.remote(ids)
                   for a, ids in self.by_actor(peers).items()}
        for a, future in futures.items():
            for i, (member, voter) in self.get(future, f"peers {self.by_actor(peers)[a]}",
                                               "outcomes").items():
                self.run.peers[i].member, self.run.peers[i].voter = member, voter

    def threads(self) -> list[tuple[int, dict[str, int]]]:
        return list(self.get([a.threads.remote() for a in self.actors], "every peer",
                             "threads"))

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
