"""One peer's round: its roles composed into one state machine (architecture.md, protocol).

The same code runs in the simulator (``sim.peers``: N of these over a loopback transport and
the embedded chain) and in a real peer process (``node``: over gRPC and a JSON-RPC chain).
It is pure: ``on_event`` / ``on_message`` take the peer's state and one event or message and
return :class:`~phalanx.protocol.actions.Actions`. What the peer computes locally (training,
evaluation, the rule's public context, fetching a model by its hash) comes in as
:class:`Work`; how it seals (X25519 envelopes from ``net``) as :class:`Runtime` — ``protocol``
imports neither ``net`` nor ``ml``.

Events, in the order a round delivers them (protocol.md §2–4):
``BeaconOpened`` (reveal last round's beacon secret, commit a new one) → ``BeaconDeadline``
(close the beacon) → ``RoundOpened`` (roles drawn; the member keys read from chain) →
``CommitDeadline`` (the part-1 roots on chain) → ``ResponseDeadline`` (the part-2 roots on chain) →
``OpeningDeadline`` (as often as the driver's clock says an opening, or the wait for the other
members' FINISHED, timed out) →
``VoteOpened`` (a result stands) → ``RevealOpened`` → ``SettleOpened``. Several peers may
send the same closing transaction (close the beacon, settle): the first one counts and the
driver treats the contract's "already done" as done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from phalanx.attacks import protocol as deviations
from phalanx.chain.ledger import Attestation
from phalanx.errors import ProtocolViolation, Reject
from phalanx.mpc.coins import compute_coin
from phalanx.mpc.committee_client import Observer
from phalanx.mpc.dealt import choose_scheme
from phalanx.mpc.parties import SecretSource
from phalanx.mpc.server import Opener, Server
from phalanx.protocol import committee as member_steps
from phalanx.protocol.actions import (
    Actions,
    Attest,
    CloseBeacon,
    CommitBeacon,
    CommitVote,
    PostBundle,
    PostResponse,
    RevealBeacon,
    Settle,
)
from phalanx.protocol.admission import require
from phalanx.protocol.committee import CommitDeadline, MemberState, Phase, ResponseDeadline
from phalanx.protocol.identity import Identity
from phalanx.protocol.messages import Kind, Signed
from phalanx.protocol.models import encode_model, hash_model
from phalanx.protocol.proposer import ProposerState, make_part1, make_part2, process_dispute
from phalanx.protocol.round import RoundView
from phalanx.protocol.voter import VoterState, process_reveal_opened, process_vote_opened
from phalanx.rules import Rule, RuleContext
from phalanx.rules.base import check_shape_and_finite
from phalanx.rules.secure import SecureParams, make_circuit


class Work(Protocol):
    """A peer's local computation (its data never leaves it)."""

    def fetch(self, address: bytes) -> NDArray[np.float32] | None:
        """The model at this content address (hash-checked), or None if no one serves it."""

    def train(self, params: NDArray[np.float32], rnd: int) -> NDArray[np.float32]:
        """Local training from ``params``: the raw update."""

    def context(self, params: NDArray[np.float32], rnd: int) -> RuleContext:
        """The rule's public context of the round (g_0 from the public root data, ...)."""

    def evaluate(self, params: NDArray[np.float32]) -> float:
        """Accuracy on this peer's own held-out data."""


class Sealing(Protocol):
    """One party's sealing for one round (``net.envelope.Sender``)."""

    def seal_to(self, recipient: bytes, payload: bytes | memoryview, context: bytes,
                observe: Observer | None = None) -> bytes | memoryview: ...

    def reveal(self, recipient: bytes, context: bytes) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Runtime:
    """How a peer seals and opens envelopes (``net.envelope``), and its CPU clock."""

    #: a fresh sender for one round (it keeps the round's ephemerals for disputes)
    new_sender: Callable[[], Sealing]
    #: how the holder of an X25519 secret opens envelopes addressed to it
    opener: Callable[[bytes], Opener]
    #: how anyone opens one envelope from its revealed ephemeral and recipient key (§3.4)
    revealed_opener: Callable[[bytes, bytes], Opener]
    clock: Callable[[], float] = lambda: 0.0


@dataclass(frozen=True, slots=True)
class Task:
    """The task's public configuration every peer shares (the rule and its encoding)."""

    rule: Rule
    params: SecureParams
    epsilon_bps: int


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How a malicious peer deviates (the adversary models of ``attacks``; honest: none).

    ``flip_ballot``: votes the opposite of its judgement; ``garbage_upload``: commits to and
    sends random bytes instead of a sharing (a broken or malicious client);
    ``withhold_reveal``: answers no dispute; ``tamper_consistency`` / ``false_claim``: as a
    member, alters its consistency share of, or falsely claims it cannot open, one client's
    upload (``attacks.protocol``).
    """

    flip_ballot: bool = False
    garbage_upload: bool = False
    withhold_reveal: bool = False
    tamper_consistency: bool = False
    false_claim: bool = False
    #: as a proposer, sends member ``garbage_to`` committed random bytes (the others get
    #: their true envelopes)
    garbage_to: int | None = None
    #: as a tampering or falsely claiming member, also disputes its own share at once
    dispute_own: bool = False
    #: as a member, alters its consistency share only in the message to seat ``tamper_to``
    tamper_to: int | None = None
    #: as a member, deals its PRZS keys to every member but seat ``withhold_przs_to``
    withhold_przs_to: int | None = None
    #: as a member, sends nothing and attests nothing (a crashed or withholding server)
    silent: bool = False
    #: as a proposer, cheats inside the MPC with this ``rules.secure.ClientFault`` value
    #: (``attacks.protocol.CLIENT_FAULTS``)
    client_fault: str | None = None
    #: as a tampering member, disputes its own share telling only the proposer and this seat
    dispute_only_to: int | None = None
    #: as a proposer, sends its REVEAL only to the member at this seat
    reveal_only_to: int | None = None
    #: as a member, alters its final share only in the message to this seat
    tamper_final_to: int | None = None


@dataclass(frozen=True, slots=True)
class BeaconOpened:
    """The beacon window of ``round`` opened (reveal); ``eligible``: the ledger lets this peer
    commit a secret for the next draw now (a role holder of ``round``, after the draw)."""

    round: int
    eligible: bool


@dataclass(frozen=True, slots=True)
class BeaconDeadline:
    """The beacon window closed: the seed can be fixed and the roles drawn."""


@dataclass(frozen=True, slots=True)
class SettleOpened:
    """The round can be settled."""


@dataclass(frozen=True, slots=True)
class RoundOpened:
    """The roles are drawn: the round's view and the current global model's hash."""

    view: RoundView
    model: bytes


@dataclass(frozen=True, slots=True)
class OpeningDeadline:
    """An opening among the members timed out (missing shares become erasures)."""


@dataclass(frozen=True, slots=True)
class VoteOpened:
    """A result stands on chain: voters judge ``candidate``."""

    candidate: bytes


@dataclass(frozen=True, slots=True)
class RevealOpened:
    """The vote-reveal window opened."""


MAX_EARLY = 4096
"""Messages a peer keeps for a round it has not opened yet (a bound on what it buffers)."""

Event = (BeaconOpened | BeaconDeadline | RoundOpened | CommitDeadline | ResponseDeadline
         | OpeningDeadline | VoteOpened | RevealOpened | SettleOpened)


@dataclass(slots=True)
class PeerState:
    """One peer: its identity and secrets, and its state in the current round."""

    me: Identity
    secrets: SecretSource
    task: Task
    work: Work
    runtime: Runtime
    behaviour: Behaviour = field(default_factory=Behaviour)
    view: RoundView | None = None
    model: bytes = b""
    params: NDArray[np.float32] | None = None
    proposer: ProposerState | None = None
    member: MemberState | None = None
    voter: VoterState | None = None
    attested: bool = False
    #: messages of a round not opened yet (taken in when it opens)
    early: list[Signed] = field(default_factory=list)
    #: the beacon secret this peer committed and has not revealed yet
    beacon_secret: bytes | None = None


def on_event(state: PeerState, event: Event) -> Actions:
    """One event of the round (see the module docstring for their order)."""
    return _silenced(state, _on_event(state, event))


def _silenced(state: PeerState, out: Actions) -> Actions:
    """A silent member's steps run, but nothing of its role leaves it; the other outgoing
    deviations rewrite or withhold this peer's own messages."""
    b = state.behaviour
    if b.tamper_final_to is not None and state.member is not None:
        out.messages = deviations.tamper_final_to(state.member, out.messages, b.tamper_final_to)
    if b.reveal_only_to is not None and state.proposer is not None:
        out.messages = deviations.reveal_only_to(state.proposer, out.messages, b.reveal_only_to)
    if not (b.silent and state.member is not None):
        return out
    return Actions(txs=[t for t in out.txs if not isinstance(t, Attest)], blobs=out.blobs,
                   notes=out.notes)


def _on_event(state: PeerState, event: Event) -> Actions:
    if isinstance(event, BeaconOpened):
        return _beacon(state, event)
    if isinstance(event, BeaconDeadline):
        return Actions(txs=[CloseBeacon()])
    if isinstance(event, SettleOpened):
        return Actions(txs=[Settle()])
    if isinstance(event, RoundOpened):
        return _open_round(state, event)
    if state.view is None:
        return Actions()
    if isinstance(event, CommitDeadline):
        return _commit_deadline(state, event)
    if isinstance(event, ResponseDeadline):
        return _response_deadline(state, event)
    if isinstance(event, OpeningDeadline):
        if state.member is None:
            return Actions()
        return _after_member_step(state, member_steps.process_opening_deadline(state.member))
    if isinstance(event, VoteOpened):
        return _vote(state, event)
    if isinstance(event, RevealOpened) and state.voter is not None:
        tx = process_reveal_opened(state.voter)
        return Actions(txs=[tx] if tx is not None else [])
    return Actions()


def on_message(state: PeerState, msg: Signed) -> Actions:
    """One admitted message (ProtocolViolation names a refused one and its sender).

    A message of a round this peer has not opened yet (peers learn of a round at slightly
    different times) is kept, a bounded number, and taken in when the round opens.
    """
    return _silenced(state, _on_message(state, msg))


def _on_message(state: PeerState, msg: Signed) -> Actions:
    kind, member = msg.header.kind, state.member
    if state.view is None or msg.header.round > state.view.round:
        require(len(state.early) < MAX_EARLY, Reject.WRONG_PHASE, msg.header.sender,
                "too many messages for a round not opened yet")
        state.early.append(msg)
        return Actions()
    if kind is Kind.DISPUTE and state.proposer is not None:
        return Actions(messages=process_dispute(state.proposer, msg))
    if kind is Kind.DISPUTE and member is not None:
        return _after_member_step(state, member_steps.process_dispute_notice(member, msg))
    if member is None:
        raise ProtocolViolation(Reject.WRONG_PHASE, msg.header.sender,
                                f"{kind.name} to a peer that is not a member this round")
    if kind is Kind.REVEAL:
        return _after_member_step(state, member_steps.process_reveal(member, msg))
    if kind is Kind.UPLOAD:
        return _after_member_step(state, member_steps.process_upload(member, msg))
    if kind is Kind.PRZS_KEY:
        return _after_member_step(state, member_steps.process_przs_key(member, msg))
    if kind is Kind.ZERO_DEAL:
        return _after_member_step(state, member_steps.process_zero_deal(member, msg))
    if kind is Kind.ZERO_REVEAL:
        return _after_member_step(state, member_steps.process_zero_reveal(member, msg))
    if kind is Kind.EVIDENCE:
        return _after_member_step(state, member_steps.process_evidence(member, msg))
    if kind is Kind.FINISHED:
        return _after_member_step(state, member_steps.process_finished(member, msg))
    if kind is Kind.OPENING:
        return _after_member_step(state, member_steps.process_opening(member, msg))
    raise ProtocolViolation(Reject.WRONG_PHASE, msg.header.sender, f"{kind.name} not handled")


# -- beacon (protocol.md §4) ----------------------------------------------------------------
def _beacon(state: PeerState, event: BeaconOpened) -> Actions:
    """Reveal the secret committed for this draw; commit a fresh one (own secrets) for the
    next, if eligible."""
    out = Actions()
    if state.beacon_secret is not None:
        out.txs.append(RevealBeacon(state.beacon_secret))
        state.beacon_secret = None
    if event.eligible:
        state.beacon_secret = state.secrets.token(state.me.address, "beacon", event.round + 1)
        out.txs.append(CommitBeacon(state.beacon_secret))
    return out


def commit_first_beacon(state: PeerState) -> CommitBeacon:
    """At registration: the secret for the first draw."""
    state.beacon_secret = state.secrets.token(state.me.address, "beacon", 0)
    return CommitBeacon(state.beacon_secret)


# -- round start ----------------------------------------------------------------------------
def _open_round(state: PeerState, event: RoundOpened) -> Actions:
    out = _open_roles(state, event)
    early, state.early = state.early, []
    for msg in early:
        if msg.header.round != event.view.round:
            continue  # of another round: dropped (a replay is refused anyway)
        try:
            out.extend(on_message(state, msg))
        except ProtocolViolation as e:
            out.notes.append({"event": "refused", "from": str(e.peer),
                              "reason": e.reason.value, "detail": e.detail})
    return out


def _open_roles(state: PeerState, event: RoundOpened) -> Actions:
    view, me = event.view, state.me.address
    state.view, state.model, state.params = view, event.model, None
    state.proposer = state.member = state.voter = None
    state.attested = False
    if me in view.committee:
        return _start_member(state, view)
    if me in view.proposers:
        return _start_proposer(state, view)
    if me in view.voters:
        state.voter = VoterState(state.me, view, state.secrets, state.task.epsilon_bps)
    return Actions()


def _global(state: PeerState) -> NDArray[np.float32] | None:
    if state.params is None:
        state.params = state.work.fetch(state.model)
    return state.params


def _start_member(state: PeerState, view: RoundView) -> Actions:
    params = _global(state)
    if params is None:
        return Actions(notes=[{"event": "no-model", "model": state.model.hex()}])
    ctx = state.work.context(params, view.round)
    circuit = make_circuit(state.task.rule, ctx, state.task.params, len(view.proposers))
    sender = state.runtime.new_sender()

    def sealer(r: int, payload: bytes | memoryview, context: bytes,
               observe: Observer | None) -> bytes | memoryview:
        return sender.seal_to(view.member_keys[r], payload, context, observe)

    server = Server(view.seat(state.me.address), circuit, m=view.m, t=view.t,
                    session=view.session, secrets=state.secrets, party=state.me.address,
                    sealer=sealer, opener=state.runtime.opener(state.me.x25519_secret),
                    clock=state.runtime.clock, zero=_zero_scheme(state.task.params, view))
    state.member = MemberState(state.me, view, server,
                               revealed_opener=state.runtime.revealed_opener)
    msgs = member_steps.start_member(state.member)
    if state.behaviour.withhold_przs_to is not None:
        msgs = deviations.withhold_przs(state.member, msgs, state.behaviour.withhold_przs_to)
    return Actions(messages=msgs)


def _zero_scheme(params: SecureParams, view: RoundView) -> str:
    """The round's re-randomization: the task's, or the cheaper one at (m, t) for "auto"
    (``mpc.dealt.choose_scheme``: every member computes the same from public data)."""
    return choose_scheme(view.m, view.t) if params.zero == "auto" else params.zero


def _start_proposer(state: PeerState, view: RoundView) -> Actions:
    params = _global(state)
    if params is None:
        return Actions(notes=[{"event": "no-model", "model": state.model.hex()}])
    ctx = state.work.context(params, view.round)
    circuit = make_circuit(state.task.rule, ctx, state.task.params, len(view.proposers))
    sender = state.runtime.new_sender()
    state.proposer = ProposerState(state.me, view, circuit, state.secrets, sender.seal_to,
                                   None if state.behaviour.withhold_reveal else sender.reveal)
    if state.behaviour.garbage_upload:
        root, msgs = deviations.garbage(state.proposer, 1)
        return Actions(messages=msgs, txs=[PostBundle(root)])
    update = state.work.train(params, view.round)
    prepared = state.task.rule.prepare(update, ctx)
    bad = check_shape_and_finite(np.asarray(prepared), ctx)
    if bad is not None:  # an honest client refuses to encode it (protocol.md §1)
        return Actions(notes=[{"event": "not-proposed", "reason": bad.reason.value,
                               "detail": bad.detail}])
    fault = state.behaviour.client_fault
    if fault is not None and fault != "resend-part1":
        root, msgs = deviations.faulty_part1(state.proposer, prepared, fault)
    else:
        root, msgs = make_part1(state.proposer, prepared)
    if state.behaviour.garbage_to is not None:
        root, msgs = deviations.garbage_to(state.proposer, state.behaviour.garbage_to)
    return Actions(messages=msgs, txs=[PostBundle(root)])


# -- deadlines ------------------------------------------------------------------------------
def _commit_deadline(state: PeerState, event: CommitDeadline) -> Actions:
    view = state.view
    assert view is not None
    if state.member is not None:
        member_steps.process_commit_deadline(state.member, event)
        return Actions()
    prop = state.proposer
    if prop is None or event.roots.get(state.me.address) != prop.roots.get(1):
        return Actions()  # not a proposer, or its part 1 is not bound: it sends no part 2
    coin1 = compute_coin(view.session, view.beacon, 1,
                         member_steps.posted_roots(view, event.roots))
    if state.behaviour.garbage_upload:
        root, msgs = deviations.garbage(prop, 2)
    else:
        root, msgs = make_part2(prop, coin1)
    if state.behaviour.client_fault == "resend-part1":
        msgs = deviations.resend_part1(prop) + msgs
    return Actions(messages=msgs, txs=[PostResponse(root)])


def _response_deadline(state: PeerState, event: ResponseDeadline) -> Actions:
    if state.member is None:
        return Actions()
    member_steps.process_response_deadline(state.member, event)
    msgs = member_steps.process_pass(state.member)
    if state.behaviour.tamper_consistency:
        msgs = deviations.tamper_consistency(state.member, msgs)
    if state.behaviour.false_claim:
        msgs = deviations.false_claim(state.member, msgs)
    if state.behaviour.tamper_to is not None:
        msgs = deviations.tamper_consistency_to(state.member, msgs, state.behaviour.tamper_to)
    if state.behaviour.dispute_own:
        msgs = deviations.dispute_own_share(state.member, msgs)
    if state.behaviour.dispute_only_to is not None:
        msgs = deviations.dispute_only_to(state.member, msgs, state.behaviour.dispute_only_to)
    return _after_member_step(state, msgs)


def _after_member_step(state: PeerState, messages: list[Signed]) -> Actions:
    """Send what the step produced; once the MPC is done, attest (once)."""
    out = Actions(messages=list(messages))
    member = state.member
    if member is None or member.phase is not Phase.DONE or state.attested:
        return out
    state.attested = True
    if member.aborted is not None:
        out.notes.append({"event": "aborted", "reason": member.aborted})
        return out
    params = _global(state)
    vector = member_steps.get_output(member)
    if params is None or vector is None:
        return out
    candidate = (params + vector).astype(np.float32)
    address = hash_model(candidate)
    out.blobs[address] = encode_model(candidate)
    out.txs.append(Attest(make_attestation(member, address)))
    return out


def make_attestation(member: MemberState, result: bytes) -> Attestation:
    """The result hash and the evidence this member signs (protocol.md §3.4, §4): the
    accepted clients (only these are paid), the rejected ones with their reasons, and the
    servers it identified."""
    view = member.view
    rejected = tuple((view.proposers[c], v[0]) for c, v in sorted(member.verdicts.items())
                     if v is not None)
    servers = tuple(view.committee[j] for j in sorted(member.server.cheaters))
    accepted = tuple(view.proposers[c] for c in member_steps.get_accepted(member))
    return Attestation(result, rejected, servers, accepted)


# -- voting ---------------------------------------------------------------------------------
def _vote(state: PeerState, event: VoteOpened) -> Actions:
    if state.voter is None:
        return Actions()
    tx = process_vote_opened(state.voter, event.candidate, state.model, state.work.fetch,
                             state.work.evaluate)
    if state.behaviour.flip_ballot:
        state.voter.accept = not tx.accept
        tx = CommitVote(state.voter.accept, tx.salt)
    return Actions(txs=[tx], notes=[{"event": "ballot", "accept": tx.accept,
                                     "scores": state.voter.scores}])
