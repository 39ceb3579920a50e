"""The simulator as N peers' state machines over a loopback transport and the chain
(architecture.md: "the simulator is N peers' state machines ... never one object acting for
all"; issue 9).

Each peer is a ``protocol.peer.PeerState`` with its own identity, secrets and sealing keys; its
messages are signed, encoded, moved by ``net.loopback`` and admitted by the receiver; its
transactions are sent to the contract with its own account. The driver here only plays the
network and the clock: it delivers messages until none is in flight, then advances the chain
and hands every peer the next deadline, reading what the chain says (roots, roles, the
winning result) exactly as a real peer's chain follower does.

What stays simulator knowledge (never protocol code): local training runs batched for all the
round's proposers at once, and an omniscient attack may read the honest updates before the
malicious peers "train" (``sim.federation.collect_updates``); voters' held-out data and the
test set are the simulator's. Malicious peers run the same protocol with a
``protocol.peer.Behaviour`` (flipped ballots, garbage uploads) on top of their poisoned updates.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from phalanx.attacks.protocol import SERVER_DEVIATIONS, corrupt_seats
from phalanx.chain.ledger import ContractLedger, make_ledger
from phalanx.chain.model import EMPTY, Phase, Settlement, TaskParams
from phalanx.errors import PhalanxError, ProtocolViolation, Reject
from phalanx.ml.data import Dataset
from phalanx.ml.train import evaluate, set_flat_params
from phalanx.mpc.parties import SecretSource, SeededSecrets
from phalanx.mpc.prg import derive
from phalanx.net.envelope import Sender, opener_of, revealed_opener
from phalanx.net.loopback import LoopbackHub, LoopbackTransport
from phalanx.net.transport import Delivery
from phalanx.protocol import actions as tx
from phalanx.protocol.actions import Actions
from phalanx.protocol.chain_view import read_responses, read_roots, read_view
from phalanx.protocol.committee import CommitDeadline, ResponseDeadline
from phalanx.protocol.committee import Phase as MemberPhase
from phalanx.protocol.identity import Identity
from phalanx.protocol.messages import decode, encode
from phalanx.protocol.models import decode_model, encode_model, hash_model
from phalanx.protocol.peer import (
    BeaconDeadline,
    BeaconOpened,
    Behaviour,
    OpeningDeadline,
    PeerState,
    RevealOpened,
    RoundOpened,
    Runtime,
    SettleOpened,
    Task,
    VoteOpened,
    commit_first_beacon,
    on_event,
    on_message,
)
from phalanx.protocol.round import RoundView
from phalanx.rules import Aggregate, Rejection, RuleContext
from phalanx.rules.secure import SecureParams
from phalanx.rules.secure.parties import OsSecrets
from phalanx.sim.chained import ETHER, MIN_STAKE, POOL, STAKE
from phalanx.sim.config import SimConfig
from phalanx.sim.federation import (
    AggregateOutcome,
    Federation,
    Proposal,
    RoundMetrics,
    build_federation,
    collect_updates,
    hold_out_validation,
    reference_for,
    round_metrics,
    timed,
)
from phalanx.sim.secure_params import choose_frac_bits

#: openings that time out before a round gives up on its committee
MAX_OPENING_DEADLINES = 5


class SimWork:
    """A simulated peer's local computation (``protocol.peer.Work``)."""

    def __init__(self, run: PeerRun, peer: int) -> None:
        self.run, self.peer = run, peer

    def fetch(self, address: bytes) -> np.ndarray | None:
        raw = self.run.blobs.get(address)
        return None if raw is None else decode_model(raw, address)

    def train(self, params: np.ndarray, rnd: int) -> np.ndarray:
        if hash_model(params) != hash_model(self.run.fed.global_params):
            raise PhalanxError(f"peer {self.peer} trains from a model other than the global one")
        return self.run.updates[self.peer]

    def context(self, params: np.ndarray, rnd: int) -> RuleContext:
        return self.run.context_of(rnd)

    def evaluate(self, params: np.ndarray) -> float:
        # a broken peer (id >= peers) holds a copy of some peer's held-out data: only its
        # uploads are broken
        x, y = self.run.validation[self.peer % len(self.run.validation)]
        model = self.run.fed.model
        set_flat_params(model, params)
        return evaluate(model, x, y)[0]


@dataclass
class PeerRun:
    """The simulated world of a per-peer run."""

    cfg: SimConfig
    fed: Federation
    ledger: ContractLedger
    peers: list[PeerState]
    endpoints: list[LoopbackTransport]
    validation: list[tuple[torch.Tensor, torch.Tensor]]
    reproducible: bool
    #: the network's content-addressed blobs (every peer checks the hash of what it fetches)
    blobs: dict[bytes, bytes] = field(default_factory=dict)
    #: this round's raw updates of the proposers (batched training; attacks applied)
    updates: dict[int, np.ndarray] = field(default_factory=dict)
    settlement: Settlement | None = None
    refused: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    #: address → peer id (filled as the peers are made)
    index: dict[str, int] = field(default_factory=dict)
    _contexts: dict[int, RuleContext] = field(default_factory=dict)
    #: where the peers' states live and step when not in this process
    #: (``sim.ray_peers.PeerHost``; issue 14); the driver's copies are then only read
    host: Any = None

    def context_of(self, rnd: int) -> RuleContext:
        """The round's public rule context (computed once: every peer would compute the same)."""
        if rnd not in self._contexts:
            self._contexts = {rnd: RuleContext(dim=self.fed.global_params.size,
                                               reference=reference_for(self.fed, rnd),
                                               num_byzantine=self.cfg.num_malicious)}
        return self._contexts[rnd]


def build_peer_run(cfg: SimConfig, data: Dataset | None = None) -> PeerRun:
    """Every peer with its own identity and secrets, registered on a freshly deployed task."""
    fed = build_federation(cfg, data)
    rng = np.random.default_rng([cfg.seed, 99])
    validation = hold_out_validation(fed, rng, cfg.validation_fraction)
    n_peers = cfg.peers + cfg.malformed_peers
    sources = party_sources(cfg, n_peers)
    identities = [Identity.from_source(s, f"peer:{i}") if cfg.reproducible_secrets
                  else Identity.generate() for i, s in enumerate(sources)]
    deployer = Identity.from_source(SeededSecrets(derive(cfg.seed.to_bytes(8, "big"),
                                                         "deployer")), "deployer")
    proposers = cfg.proposers or cfg.peers - cfg.committee - cfg.voters
    params = TaskParams(min_stake=MIN_STAKE, committee_size=cfg.committee,
                        threshold=cfg.threshold, n_proposers=proposers, n_voters=cfg.voters,
                        rounds=cfg.rounds, epsilon=int(round(cfg.epsilon * 10_000)),
                        registration_blocks=2, attest_blocks=2, response_blocks=1)
    ledger = make_ledger(cfg.ledger, params=params, deployer=deployer.account, pool=POOL,
                         genesis_seed=rng.bytes(32),
                         initial_model=hash_model(fed.global_params))
    f = cfg.frac_bits if cfg.frac_bits is not None else choose_frac_bits(
        cfg.rule, dict(cfg.rule_params), fed.global_params.size, max(proposers, n_peers),
        m=cfg.committee, t=cfg.threshold)
    task = Task(fed.rule, SecureParams(m=cfg.committee, t=cfg.threshold, frac_bits=f,
                                       trust_bit=cfg.reveals_trust_bit), params.epsilon)
    hub = LoopbackHub()
    run = PeerRun(cfg, fed, ledger, [], [], validation, cfg.reproducible_secrets)
    for i, (me, source) in enumerate(zip(identities, sources, strict=True)):
        behaviour = Behaviour(
            flip_ballot=i in fed.malicious and cfg.voting_attack and cfg.attack != "none",
            garbage_upload=i >= cfg.peers)
        runtime = Runtime(new_sender=_sender_factory(source, me, cfg.reproducible_secrets),
                          opener=opener_of, revealed_opener=revealed_opener,
                          clock=time.thread_time)
        run.peers.append(PeerState(me, source, task, SimWork(run, i), runtime, behaviour))
        run.index[me.address] = i
        run.endpoints.append(hub.endpoint(me.address, admit=_admit(me.address)))
    run.blobs[hash_model(fed.global_params)] = encode_model(fed.global_params)
    for i, p in enumerate(run.peers):
        ledger.faucet(p.me.address, STAKE + ETHER)
        ledger.register(p.me.account, STAKE, p.me.x25519_public, f"loop:{p.me.address}")
        if ledger.may_commit_beacon(p.me.address):  # round 0's beacon: the first k
            perform(run, i, Actions(txs=[commit_first_beacon(p)]))
    host_peers = getattr(fed.executor, "host_peers", None)
    if host_peers is not None:  # the executor steps the peers elsewhere (sim/ray_peers.py)
        run.host = host_peers(run)
    return run


def party_sources(cfg: SimConfig, n: int) -> list[SecretSource]:
    """One secret source per peer: the OS, or (asked for) one seeded source per party."""
    if not cfg.reproducible_secrets:
        return [OsSecrets() for _ in range(n)]
    root = derive(cfg.seed.to_bytes(8, "big"), "sim-party-secrets")
    return [SeededSecrets(derive(root, "peer", i)) for i in range(n)]


def _sender_factory(source: SecretSource, me: Identity, reproducible: bool) -> Any:
    """A fresh ``Sender`` per round; with seeded secrets its ephemerals hash the context and
    payload, so no key ever seals two plaintexts (docs/protocol.md)."""
    if not reproducible:
        return Sender

    def ephemeral(context: bytes, payload: bytes | memoryview) -> bytes:
        return source.token(me.address, "ephemeral", context,
                            hashlib.sha256(payload).digest())

    return lambda: Sender(ephemeral)


def _admit(me: str) -> Any:
    """The transport's admission: a message parses exactly and is addressed to this peer
    (signature, binding, role and phase are checked by the protocol step itself)."""

    def admit(d: Delivery) -> Reject | None:
        msg = decode(d.payload, d.sender)
        return None if msg.header.receiver == me else Reject.WRONG_RECEIVER

    return admit


# -- the driver: network and clock --------------------------------------------------------------
def draw_roles(run: PeerRun) -> RoundView:
    """The beacon as the peers play it (reveal, one peer closes, the role holders commit the
    next round's secrets); the view."""
    led = run.ledger
    led.advance_to(Phase.BEACON)
    rnd = led.get_round_state().round
    everyone = list(range(len(run.peers)))
    for i, acts in zip(everyone, steps(run, BeaconOpened(rnd, False), everyone), strict=True):
        perform(run, i, acts)
    led.advance_to(Phase.PROPOSE)
    perform(run, 0, steps(run, BeaconDeadline(), [0])[0])
    view = read_view(led)
    for a in (*view.committee, *view.proposers, *view.voters):
        if led.may_commit_beacon(a):
            perform(run, run.index[a], steps(run, BeaconOpened(rnd, True), [run.index[a]])[0])
    return view


def steps(run: PeerRun, event: Any, peers: Sequence[int]) -> list[Actions]:
    """Each listed peer's step on ``event``, in order, where the peers' states live (a step
    reads only its own peer's state, so hosted peers step side by side)."""
    if run.host is not None:
        return list(run.host.events(event, peers))
    return [on_event(run.peers[i], event) for i in peers]


def sync(run: PeerRun, peers: Sequence[int]) -> None:
    """Bring hosted peers' member and voter outcomes here before the driver reads them."""
    if run.host is not None:
        run.host.sync(peers)


def set_behaviour(run: PeerRun, i: int, behaviour: Behaviour) -> None:
    run.peers[i].behaviour = behaviour
    if run.host is not None:
        run.host.set_behaviour(i, behaviour)


def perform(run: PeerRun, i: int, actions: tx.Actions) -> None:
    """Carry out one peer's actions: transactions with its account, blobs, messages."""
    peer, led = run.peers[i], run.ledger
    acct = peer.me.account
    run.blobs.update(actions.blobs)
    for note in actions.notes:
        run.notes.append({"peer": i, **note})
    for t in actions.txs:
        if isinstance(t, tx.Attest):
            led.advance_to(Phase.ATTEST)
        out = tx.submit(led, acct, t)
        if isinstance(t, tx.Settle):
            run.settlement = out
    for msg in actions.messages:
        run.endpoints[i].send(msg.header.receiver, msg.header.msg_id, encode(msg))


def pump(run: PeerRun) -> int:
    """Deliver messages until none is in flight; returns how many were processed."""
    if run.host is not None:  # the same deliveries in the same order (sim/ray_peers.py)
        return int(run.host.pump(perform))
    done = 0
    while True:
        moved = 0
        for i, ep in enumerate(run.endpoints):
            for d in ep.receive():
                moved += 1
                try:
                    acts = on_message(run.peers[i], decode(d.payload, d.sender))
                except ProtocolViolation as e:
                    run.refused.append({"peer": i, "from": e.peer, "reason": e.reason.value,
                                        "detail": e.detail})
                    continue
                perform(run, i, acts)
        done += moved
        if not moved:
            return done


def broadcast(run: PeerRun, event: Any, peers: Sequence[int]) -> None:
    if run.host is None:
        for i in peers:
            perform(run, i, on_event(run.peers[i], event))
    else:
        for i, acts in zip(peers, steps(run, event, peers), strict=True):
            perform(run, i, acts)
    pump(run)


def run_peer_round(run: PeerRun, rnd: int, view: RoundView | None = None) -> RoundMetrics:
    """One full round played by the peers; the simulator only moves bytes and time.
    ``view``: the roles already drawn (``draw_roles``), e.g. by a test that then chooses who
    misbehaves."""
    seconds: dict[str, float] = {}
    run.refused, run.notes = [], []
    with timed(seconds, "chain"):
        view = view if view is not None else draw_roles(run)
    adversaries, restore = round_adversaries(run, view, rnd)
    try:
        metrics = _play(run, rnd, view, seconds)
    finally:
        for i, behaviour in restore.items():
            set_behaviour(run, i, behaviour)
    if adversaries:
        metrics.extra["adversaries"] = adversaries
    return metrics


def round_adversaries(run: PeerRun, view: RoundView,
                      rnd: int) -> tuple[dict[str, Any], dict[int, Behaviour]]:
    """This round's protocol-level adversaries, as the in-process driver chooses them: corrupt
    seats (a seeded choice) running ``cfg.server_attack``, and the first
    ``cfg.num_faulty_clients`` malicious proposers (by id) running ``cfg.client_fault``.
    Returns what the round's metrics record and the behaviours to restore after it."""
    cfg = run.cfg
    out: dict[str, Any] = {}
    changes: dict[int, dict[str, Any]] = {}
    if cfg.num_corrupt_servers:
        seats = corrupt_seats(cfg.seed, rnd, view.m, cfg.num_corrupt_servers)
        for j in seats:
            changes[run.index[view.committee[j]]] = {SERVER_DEVIATIONS[cfg.server_attack]: True}
        out.update(server_attack=cfg.server_attack, corrupt_servers=seats)
    if cfg.num_faulty_clients:
        ids = sorted(run.index[a] for a in view.proposers)
        bad = [i for i in ids if i in run.fed.malicious][: cfg.num_faulty_clients]
        for i in bad:
            changes[i] = {"client_fault": cfg.client_fault}
        out.update(client_fault=cfg.client_fault, faulty_clients=bad)
    restore = {}
    for i, change in changes.items():
        restore[i] = run.peers[i].behaviour
        set_behaviour(run, i, replace(restore[i], **change))
    return out, restore


def _play(run: PeerRun, rnd: int, view: RoundView, seconds: dict[str, float]) -> RoundMetrics:
    fed, led, index = run.fed, run.ledger, run.index
    roles = [index[a] for a in (*view.committee, *view.proposers, *view.voters)]
    proposer_ids = [index[a] for a in view.proposers]
    ids, raw = collect_updates(fed, rnd, seconds,
                               proposers=[p for p in proposer_ids if p < run.cfg.peers])
    run.updates = dict(zip(ids, raw, strict=False))
    model = led.get_round_state().model_hash
    with timed(seconds, "reference"):  # the round the peers ask for (RoundView.round)
        run.context_of(view.round)
    with timed(seconds, "propose"):
        broadcast(run, RoundOpened(view, model), roles)
    with timed(seconds, "chain"):
        led.advance_to(Phase.ATTEST)
        roots = read_roots(led, view)
    members = [index[a] for a in view.committee]
    with timed(seconds, "respond"):
        broadcast(run, CommitDeadline(roots), [*members, *proposer_ids])
    with timed(seconds, "chain"):  # the response window closes: the part-2 roots are fixed
        led.mine(max(0, led.get_phase_end(Phase.PROPOSE) + led.params.response_blocks
                     - led.get_block()))
        responses = read_responses(led, view)
    with timed(seconds, "aggregate"):
        broadcast(run, ResponseDeadline(responses), members)
        for _ in range(MAX_OPENING_DEADLINES):
            sync(run, members)
            if all(_member_done(run.peers[j]) for j in members):
                break
            broadcast(run, OpeningDeadline(), members)
    state = led.get_round_state()
    ballots: dict[int, bool] = {}
    with timed(seconds, "vote"):
        if state.winning != EMPTY and view.voters:
            led.advance_to(Phase.COMMIT)
            voters = [index[a] for a in view.voters]
            broadcast(run, VoteOpened(led.get_result(view.round)), voters)
            led.advance_to(Phase.REVEAL)
            broadcast(run, RevealOpened(), voters)
            sync(run, voters)
            ballots = {i: accept for i in voters
                       if (accept := _ballot(run.peers[i])) is not None}
    with timed(seconds, "chain"):
        led.advance_to(Phase.SETTLE)
        run.settlement = None
        perform(run, members[0], steps(run, SettleOpened(), [members[0]])[0])
        settlement = run.settlement
        assert settlement is not None
    sync(run, members)
    proposal = describe(run, view, proposer_ids)
    if settlement.accepted and settlement.model != EMPTY:
        moved = SimWork(run, -1).fetch(settlement.model)
        if moved is None:
            raise PhalanxError(f"round {rnd}: the settled model is served by no peer")
        # the settled model itself (global + (moved - global) need not round back to it)
        fed.previous_update = (moved - fed.global_params).astype(np.float32)
        fed.global_params = moved
    metrics = round_metrics(fed, rnd, proposal, seconds)
    metrics.extra["ledger"] = ledger_summary(run, view, ballots, settlement)
    metrics.extra["refused_messages"] = run.refused
    metrics.extra["peer_notes"] = run.notes
    return metrics


def _member_done(peer: PeerState) -> bool:
    return peer.member is None or peer.member.phase is MemberPhase.DONE


def _ballot(peer: PeerState) -> bool | None:
    return None if peer.voter is None else peer.voter.accept


def describe(run: PeerRun, view: RoundView, proposer_ids: list[int]) -> Proposal:
    """The round's outcome as an honest member saw it (the first that finished unaborted)."""
    members = [run.peers[run.index[a]].member for a in view.committee]
    done = [m for m in members if m is not None and m.phase is MemberPhase.DONE]
    good = [m for m in done if m.aborted is None and m.output is not None]
    ref = good[0] if good else (done[0] if done else None)
    dim = run.fed.global_params.size
    extra: dict[str, Any] = {"frac_bits": run.peers[0].task.params.frac_bits,
                             "reproducible_secrets": run.reproducible}
    if ref is None or not good:
        extra["aborted"] = ref.aborted if ref is not None else "no member finished"
        agg = Aggregate(np.zeros(dim, np.float32), (), ())
        return Proposal(proposer_ids, [], AggregateOutcome(agg, extra))
    accepted = tuple(c for c, v in sorted(ref.verdicts.items())
                     if v is None and c not in ref.zero_trust)
    rejected = tuple(Rejection(c, v[0], v[1]) for c, v in sorted(ref.verdicts.items())
                     if v is not None)
    unbound = tuple(Rejection(c, Reject.MISSED_DEADLINE, "no roots on chain")
                    for c in range(len(view.proposers)) if c not in ref.verdicts)
    agg = Aggregate(np.asarray(ref.output, np.float32), accepted,
                    tuple(sorted(rejected + unbound, key=lambda r: r.index)),
                    dict(ref.revealed), tuple(sorted(ref.zero_trust)))
    extra["cheating_servers"] = sorted(ref.server.cheaters)
    extra["aborted"] = None
    return Proposal(proposer_ids, [], AggregateOutcome(agg, extra))


def ledger_summary(run: PeerRun, view: RoundView, ballots: dict[int, bool],
                   settlement: Settlement) -> dict[str, Any]:
    """What the chain decided this round, by peer id."""
    index = run.index
    stakes = [run.ledger.get_stake(p.me.address) for p in run.peers]
    bad = run.fed.malicious
    return {
        "committee": [index[a] for a in view.committee],
        "proposers": [index[a] for a in view.proposers],
        "voters": [index[a] for a in view.voters],
        "ballots": {str(k): v for k, v in sorted(ballots.items())},
        "stands": settlement.stands,
        "accepted": settlement.accepted,
        "slashed": [[index.get(a, -1), reason.name.lower(), amount / ETHER]
                    for a, reason, amount in settlement.slashes],
        "rewarded_ether": sum(settlement.rewards.values()) / ETHER,
        "stakes": [s / ETHER for s in stakes],
        "honest_stake_ether": sum(s for i, s in enumerate(stakes) if i not in bad) / ETHER,
        "malicious_stake_ether": sum(s for i, s in enumerate(stakes) if i in bad) / ETHER,
        "pool_ether": run.ledger.get_round_state().pool / ETHER,
    }
