"""One peer process: one ``protocol.peer.PeerState`` following the chain (issue 10).

The node plays ``sim.peers``'s driver for one peer, from what it sees itself: it polls the
chain's round and phase (JSON-RPC; retried with backoff, then a clear ChainError), and hands
its state the events of protocol/peer.py in their order — BeaconOpened in the beacon phase,
BeaconDeadline (close, if nobody has) and RoundOpened once roles are drawn, CommitDeadline with
the part-1 roots on chain when the attest phase opens, ResponseDeadline with the part-2 roots
on chain once the contract's response window closed and every responding proposer's part-2
upload and every PRZS key arrived (or ``response_timeout`` after the window),
OpeningDeadline after ``opening_timeout`` without progress, VoteOpened / RevealOpened in the
vote phases, SettleOpened in the settle phase. Events are delivered only after the messages
that arrived were taken in (a member must not start its pass before its PRZS keys are in).

Its actions become transactions with its own key, signed messages over gRPC to the endpoints
the peers registered on chain, and blobs in its content-addressed store, which it serves to
other peers by hash. ``status.json`` says how far it got in the current phase (a dev chain's
block producer, ``node.network``, moves the phase on once every peer is done); ``state.json``
keeps what a restart needs (the unrevealed beacon secret); ``reports/round-N.json`` what it saw.
SIGTERM: the current step finishes, then the node closes its endpoint and exits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from phalanx.attacks.protocol import SERVER_DEVIATIONS, corrupt_seats
from phalanx.chain.ledger import ContractLedger, RoundState
from phalanx.chain.model import EMPTY, Phase, Reverted, Settlement
from phalanx.errors import PhalanxError, ProtocolViolation, Reject
from phalanx.net.envelope import Sender, opener_of, revealed_opener
from phalanx.net.grpc_transport import GrpcTransport
from phalanx.net.transport import Delivery, TransportError
from phalanx.node.blobs import BlobStore
from phalanx.node.config import PeerConfig
from phalanx.node.keystore import load_keystore
from phalanx.node.retry import with_retries
from phalanx.node.warmup import warm_up
from phalanx.node.work import NodeWork
from phalanx.protocol import actions as tx
from phalanx.protocol.chain_view import read_responses, read_roots, read_view
from phalanx.protocol.committee import CommitDeadline, ResponseDeadline, awaited, can_open
from phalanx.protocol.committee import Phase as MemberPhase
from phalanx.protocol.identity import Identity, recover_signer
from phalanx.protocol.messages import Kind, Signed, compute_digest, decode, encode
from phalanx.protocol.models import encode_model, hash_model
from phalanx.protocol.peer import (
    BeaconDeadline,
    BeaconOpened,
    Behaviour,
    Event,
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
from phalanx.rules.secure import SecureParams
from phalanx.rules.secure.parties import OsSecrets
from phalanx.sim.config import SimConfig, load_config
from phalanx.sim.rundir import write_text_atomic
from phalanx.sim.secure_params import choose_frac_bits

log = logging.getLogger("phalanx.node")
ETHER = 10**18
MAX_OPENING_DEADLINES = 5  # as sim.peers
#: an opening that too few shares could open waits this many ``opening_timeout``s before its
#: deadline (which then aborts): a member one timeout behind the others (it waited for a
#: member that sat the round out, which they knew unreachable) would otherwise have its
#: shares of every later opening arrive just after the others gave up on them
SLOW_MEMBER_WAITS = 4
#: slots of the whoever-first transactions (Node._turn): at most 0.7 s of stagger
RACE_SLOTS = 8
RACE_SLOT_S = 0.1
#: message steps slower than this are logged with their duration
SLOW_STEP_S = 0.05
SEND_TIMEOUT = 4.0  # seconds a message may take to reach a peer before it counts as down
T = TypeVar("T")


@dataclass
class RoundLog:
    """What this peer saw in one round (its ``reports/round-N.json``)."""

    round: int
    role: str = "none"
    notes: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    settlement: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)


class Node:
    """A peer process's state: its keys, chain, transport, blob store and protocol state."""

    def __init__(self, cfg: PeerConfig, *, passphrase: str | None = None,
                 behaviour: Behaviour | None = None) -> None:
        self.cfg = cfg
        self.run_dir = cfg.run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "reports").mkdir(exist_ok=True)
        keys = load_keystore(cfg.keystore, passphrase)
        secret = keys.x25519.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        self.me = Identity(keys.account, secret)
        from phalanx.chain.rpc import RpcLedger

        self.ledger: ContractLedger = self.rpc(lambda: RpcLedger.attach(cfg.rpc_url,
                                                                        cfg.contract))
        self.task_cfg: SimConfig = load_config(cfg.task)
        self.store = BlobStore(self.run_dir / "blobs")
        index = cfg.partition if cfg.partition is not None else 0
        self.work = NodeWork(self.task_cfg, index, self.store, cfg.files)
        self.store.put(hash_model(self.work.initial), encode_model(self.work.initial))
        self.net = GrpcTransport(cfg.listen, admit=self._admit, advertise=cfg.advertise,
                                 serve=self.store.get, max_attempts=3, attempt_timeout=3.0,
                                 tls=cfg.transport_tls())
        self.work.net, self.work.endpoints = self.net, self._model_holders
        self.state = PeerState(self.me, OsSecrets(), self._task(), self.work,
                               Runtime(new_sender=Sender, opener=opener_of,
                                       revealed_opener=revealed_opener, clock=time.thread_time),
                               behaviour or self._behaviour())
        self.base_behaviour = self.state.behaviour
        self._endpoints: dict[str, str] = {}
        self.stop = False
        self.round, self.done = -1, set[str]()
        self.ready = -1
        #: the chain's block at the last poll (nothing changes on chain between blocks)
        self.polled_block = -1
        #: this (re)started peer first saw its round after the round's roles were drawn
        self.joined_after_draw = False
        self.view: RoundView | None = None
        #: when this member saw the response window closed (0: not yet)
        self.window_closed_at = 0.0
        #: when this peer first saw each whoever-first transaction due this round (_turn)
        self.race_seen: dict[str, float] = {}
        self.roots1: dict[str, bytes] = {}
        self.held: list[Signed] = []
        self.log = RoundLog(-1)
        self.commit_at = self.progress_at = 0.0
        self.deadlines = 0
        self.down: set[str] = set()
        self.phase_at = time.monotonic()
        self._load_state()

    # -- setup ---------------------------------------------------------------------------------
    def _task(self) -> Task:
        c, led = self.task_cfg, self.ledger
        p = led.params
        f = c.frac_bits if c.frac_bits is not None else choose_frac_bits(
            c.rule, dict(c.rule_params), self.work.initial.size,
            max(p.n_proposers, c.peers + c.malformed_peers), m=p.committee_size, t=p.threshold)
        return Task(self.work.fed.rule, SecureParams(m=p.committee_size, t=p.threshold,
                                                     frac_bits=f), p.epsilon)

    def _behaviour(self) -> Behaviour:
        c = self.task_cfg
        return Behaviour(flip_ballot=self.work.malicious and c.voting_attack
                         and c.attack != "none", garbage_upload=self.work.malformed)

    def _round_behaviour(self, view: RoundView) -> Behaviour:
        """This round's deviations, as the simulator chooses them (``sim.peers``): a member at
        one of the round's corrupt seats runs ``server_attack``; one of the first
        ``num_faulty_clients`` malicious peers (by index) runs ``client_fault`` when it
        proposes. The malicious ids and the seats are the experiment's, public."""
        c, me, b = self.task_cfg, self.me.address, self.base_behaviour
        if c.num_corrupt_servers and me in view.committee and view.seat(me) in corrupt_seats(
                c.seed, view.round, view.m, c.num_corrupt_servers):
            change: dict[str, Any] = {SERVER_DEVIATIONS[c.server_attack]: True}
            return replace(b, **change)
        faulty = sorted(self.work.fed.malicious)[:c.num_faulty_clients]
        if c.num_faulty_clients and me in view.proposers and self.work.index in faulty:
            return replace(b, client_fault=c.client_fault)
        return b

    def _load_state(self) -> None:
        path = self.run_dir / "state.json"
        if path.is_file():
            doc = json.loads(path.read_text())
            if doc.get("beacon_secret"):
                self.state.beacon_secret = bytes.fromhex(doc["beacon_secret"])

    def _save_state(self) -> None:
        secret = self.state.beacon_secret
        write_text_atomic(self.run_dir / "state.json", json.dumps(
            {"address": self.me.address, "contract": self.ledger.address,
             "beacon_secret": secret.hex() if secret else None}) + "\n")

    def register(self) -> None:
        """Register with the configured stake, or re-use the stake already on chain."""
        stake = self.rpc(lambda: self.ledger.get_stake(self.me.address))
        if stake > 0:
            log.info("registered already (stake %.2f ETH): re-using it", stake / ETHER)
            return
        amount = int(self.cfg.stake_ether * ETHER)
        self.rpc(lambda: self.ledger.register(self.me.account, amount, self.me.x25519_public,
                                              self.cfg.endpoint))
        log.info("registered %s with stake %.2f ETH at %s", self.me.address, amount / ETHER,
                 self.cfg.endpoint)
        if self.rpc(lambda: self.ledger.may_commit_beacon(self.me.address)):
            self._transact(commit_first_beacon(self.state))  # the first draw's secret
        self._save_state()

    # -- chain access ----------------------------------------------------------------------------
    def rpc(self, fn: Any) -> Any:
        """``fn()`` with retries on RPC errors (backoff from ``poll``); then ChainError."""
        return with_retries(fn, url=self.cfg.rpc_url, first_wait=self.cfg.poll,
                            tries=self.cfg.rpc_retries)

    def _endpoint(self, address: str) -> str:
        if address not in self._endpoints:
            self._endpoints[address] = self.rpc(lambda: self.ledger.get_endpoint(address))
        return self._endpoints[address]

    def _model_holders(self) -> list[str]:
        """Endpoints to ask for a model: this round's and the last round's roles."""
        view = self.view
        if view is None:
            return []
        peers = [*view.committee, *view.proposers, *view.voters]
        return [self._endpoint(a) for a in peers if a != self.me.address]

    # -- messages --------------------------------------------------------------------------------
    def _admit(self, d: Delivery) -> Reject | None:
        """Parse, addressed to this peer, signed by the sender it names (before it is queued)."""
        msg = decode(d.payload, d.sender)
        if msg.header.receiver != self.me.address:
            return Reject.WRONG_RECEIVER
        if recover_signer(compute_digest(msg.header, msg.body), msg.signature) \
                != msg.header.sender:
            return Reject.BAD_SIGNATURE
        return None

    def pump(self, timeout: float) -> int:
        """Take in every message that arrived (waiting up to ``timeout`` for the first)."""
        n = 0
        for d in self.net.receive(timeout):
            n += 1
            before = self._step_key()
            try:
                msg = decode(d.payload, d.sender)
                if self._early_part2(msg):
                    self.held.append(msg)
                    continue
                start = time.perf_counter()
                acts = on_message(self.state, msg)
            except ProtocolViolation as e:
                self._refused(e)
                continue
            except Exception as e:  # a bug must not take the peer down; the log names it
                self._failed("message", e)
                continue
            self.perform(acts)
            if (took := time.perf_counter() - start) > SLOW_STEP_S:
                log.info("%s from %s: %.3f s (%d tx, %d msg)", msg.header.kind.name,
                         msg.header.sender[:10], took, len(acts.txs), len(acts.messages))
            if self._step_key() != before:
                self.progress_at = time.monotonic()
        return n

    def _step_key(self) -> tuple[object, ...]:
        """What counts as progress of the member's current step: its phase, and the messages
        that step waits for. A faster member's next-step messages do not count, so every
        member's deadline for a step runs from when it entered it (a dispute deadline that
        reset on each early message fired at a different time in every member)."""
        m = self.state.member
        if m is None:
            return ()
        return (m.phase, len(m.inbox), len(m.finished), len(m.asked), len(m.disputes))

    def _early_part2(self, msg: Signed) -> bool:
        """A part-2 upload that reached this member before its own commitment deadline (the
        proposer saw the attest phase first): kept and taken in right after the deadline,
        as a member with a slower clock would."""
        member = self.state.member
        return (member is not None and member.phase is MemberPhase.COLLECT_PART1
                and msg.header.kind is Kind.UPLOAD and msg.header.round == member.view.round
                and msg.header.sender in member.view.proposers
                and member.view.client(msg.header.sender) in member.roots[1])

    def _refused(self, e: ProtocolViolation) -> None:
        entry = {"from": str(e.peer), "reason": e.reason.value, "detail": e.detail}
        self.log.refused.append(entry)
        log.info("refused a message from %s: %s %s", e.peer, e.reason.value, e.detail)

    def _send(self, receiver: str, msg_id: bytes, payload: bytes) -> None:
        if receiver in self.down:
            return
        try:
            self.net.send(self._endpoint(receiver), msg_id, payload, timeout=SEND_TIMEOUT)
        except TransportError as e:
            self.down.add(receiver)
            self.log.unreachable.append(receiver)
            log.warning("peer %s unreachable this round: %s", receiver, e)

    # -- actions ---------------------------------------------------------------------------------
    def perform(self, actions: tx.Actions) -> None:
        """Blobs to the store, notes to the log, transactions to the chain, messages out."""
        for address, raw in actions.blobs.items():
            self.store.put(address, raw)
        for note in actions.notes:
            self.log.notes.append(note)
            log.info("note: %s", note)
        for t in actions.txs:
            self._transact(t)
        for msg in actions.messages:
            self._send(msg.header.receiver, msg.header.msg_id, encode(msg))

    def _transact(self, t: tx.Tx) -> None:
        led, acct = self.ledger, self.me.account
        # an attestation estimated while other members' attestations are pending was seen to
        # revert on anvil (no reason given); it is tried again, a bounded number of times
        tries = 3 if isinstance(t, tx.Attest) else 1
        for attempt in range(1, tries + 1):
            try:
                out = self.rpc(lambda: tx.submit(led, acct, t))
                break
            except Reverted as e:
                if attempt == tries:
                    self._reverted(t, e)
                    return
                log.info("%s reverted (%s); trying again", type(t).__name__, e.reason or "?")
                time.sleep(self.cfg.poll)
        log.info("sent %s", type(t).__name__)
        if isinstance(out, Settlement):
            self.log.settlement = _settlement_doc(out)
        if isinstance(t, tx.CommitBeacon | tx.RevealBeacon):
            self._save_state()

    def _reverted(self, t: tx.Tx, e: Reverted) -> None:
        if isinstance(t, tx.CloseBeacon | tx.Settle):  # another peer was first
            log.debug("%s reverted: %s", type(t).__name__, e.reason)
            return
        log.warning("%s reverted: %s", type(t).__name__, e.reason)
        self.log.notes.append({"event": "reverted", "tx": type(t).__name__, "reason": e.reason})

    def fire(self, event: Event) -> None:
        """One event: messages first taken in, then the step, then its actions."""
        self.pump(0.0)
        start = time.perf_counter()
        try:
            acts = on_event(self.state, event)
        except ProtocolViolation as e:
            self._refused(e)
            return
        except Exception as e:
            self._failed(type(event).__name__, e)
            return
        stepped = time.perf_counter()
        self.perform(acts)
        self.progress_at = time.monotonic()
        log.info("%s: step %.3f s, actions %.3f s (%d tx, %d msg)", type(event).__name__,
                 stepped - start, time.perf_counter() - stepped, len(acts.txs),
                 len(acts.messages))

    def _failed(self, step: str, e: Exception) -> None:
        self.log.notes.append({"event": "step-failed", "step": step,
                               "error": f"{type(e).__name__}: {e}"})
        log.error("%s failed: %s\n%s", step, e, traceback.format_exc())
        self.done.add("failed")

    # -- the round -----------------------------------------------------------------------------
    def step(self, st: RoundState) -> None:
        """React to the chain's round and phase (each event once per round)."""
        if st.round != self.round:
            self._new_round(st)
        ph, now = st.phase, time.monotonic()
        if ph is Phase.REGISTRATION:
            self._ready(Phase.REGISTRATION)
            return
        if ph is Phase.BEACON and "beacon" not in self.done:
            # reveal the secret committed for this draw (committing the next one waits for
            # the draw: only the round's role holders may, docs/ledger.md)
            self._once("beacon", BeaconOpened(st.round, False))
        if ph >= Phase.PROPOSE and not st.roles_drawn and "close" not in self.done \
                and self._turn("close", now):
            self._once("close", BeaconDeadline())
        if ph >= Phase.PROPOSE and st.roles_drawn and "open" not in self.done:
            self._open(st)
        if ph >= Phase.ATTEST and "open" in self.done and "commit" not in self.done:
            self._commit_deadline()
        member = self.state.member
        if member is not None and "commit" in self.done and "response" not in self.done \
                and self._response_window_closed(now):
            view = self.view
            assert view is not None
            roots2 = self.rpc(lambda: read_responses(self.ledger, view))
            if self._part2_in(roots2) \
                    or now - self.window_closed_at > self.cfg.response_timeout:
                log.info("response deadline: part-2 roots of %d proposer(s) on chain, %.1f s "
                         "after the commitment deadline", len(roots2), now - self.commit_at)
                self._once("response", ResponseDeadline(roots2))
        if member is not None and "response" in self.done and member.phase is not \
                MemberPhase.DONE and self.deadlines < MAX_OPENING_DEADLINES \
                and "failed" not in self.done:
            if self._only_down_missing():
                self.deadlines += 1
                log.info("opening: every reachable member's shares are in; the unreachable "
                         "are erasures")
                self.fire(OpeningDeadline())
            elif now - self.progress_at > self.cfg.opening_timeout and (
                    can_open(member)
                    or now - self.progress_at > SLOW_MEMBER_WAITS * self.cfg.opening_timeout):
                self.deadlines += 1
                log.info("%s timed out (%d): missing shares are erasures",
                         member.phase.name.lower(), self.deadlines)
                self.fire(OpeningDeadline())
        if ph >= Phase.COMMIT and "vote" not in self.done:
            self.done.add("vote")
            if ph is Phase.COMMIT and self.state.voter is not None and st.winning != EMPTY:
                candidate = self.rpc(lambda: self.ledger.get_result(st.round))
                self.fire(VoteOpened(candidate))
        if ph >= Phase.REVEAL and "reveal" not in self.done:
            self._once("reveal", RevealOpened())
        if ph is Phase.SETTLE and "settle" not in self.done and self._turn("settle", now):
            self._once("settle", SettleOpened())
        self._ready(self._how_far(ph))

    def _turn(self, what: str, now: float) -> bool:
        """Whether this peer sends a whoever-first transaction (close the beacon, settle) now:
        each waits its own slot, ``RACE_SLOT_S`` times a number in [0, ``RACE_SLOTS``) drawn
        from a hash of the round and its address, counted from when it first saw the step
        due. With 8 peers all sending at once, seven estimates reverted and were traced by
        the node (~50 ms of its CPU each) on the round's critical path; staggered, the first
        slot usually sends alone and the others see the step done. Anyone still sends within
        ``RACE_SLOTS * RACE_SLOT_S`` s, so the round never waits on one peer."""
        seen = self.race_seen.setdefault(what, now)
        digest = hashlib.sha256(f"{what}:{self.round}:{self.me.address}".encode()).digest()
        return now - seen >= int.from_bytes(digest[:4], "big") % RACE_SLOTS * RACE_SLOT_S

    def _once(self, name: str, event: Event) -> None:
        self.done.add(name)
        self.fire(event)

    def _open(self, st: RoundState) -> None:
        self.done.add("open")
        if st.phase > Phase.PROPOSE or self.joined_after_draw:
            # too late to propose or deal keys, or (re)started after the draw: what was sent to
            # it since the draw (uploads, PRZS keys) is lost, and a member missing an upload the
            # others hold would break the round's openings; it sits the round out (an erasure,
            # slashed as silent like any absent role holder)
            log.info("round %d opened without this peer (joined in %s%s)", st.round,
                     st.phase.name, ", after the draw" if self.joined_after_draw else "")
            self.done.update({"commit", "response"})
            return
        self.view = view = self.rpc(lambda: read_view(self.ledger))
        me = self.me.address
        self.log.role = ("member" if me in view.committee else "proposer"
                         if me in view.proposers else "voter" if me in view.voters else "none")
        self.work.n_proposers = len(view.proposers)
        log.info("round %d: role %s (committee %d, proposers %d, voters %d)", view.round,
                 self.log.role, len(view.committee), len(view.proposers), len(view.voters))
        self.state.behaviour = self._round_behaviour(view)
        if self.state.behaviour != self.base_behaviour:
            log.info("round %d: deviating as the experiment says: %s", view.round,
                     self.state.behaviour)
        may_commit = self.rpc(lambda: self.ledger.may_commit_beacon(me))
        self.fire(RoundOpened(view, st.model_hash))
        if may_commit:  # a role holder: the next draw's secret (after the round's own work,
            # which the phase waits for; the commitment is due by the next beacon phase)
            self.fire(BeaconOpened(st.round, True))

    def _commit_deadline(self) -> None:
        self.done.add("commit")
        view = self.view
        assert view is not None
        self.roots1 = self.rpc(lambda: read_roots(self.ledger, view))
        self.commit_at = time.monotonic()
        self.fire(CommitDeadline(self.roots1))
        held, self.held = self.held, []
        for msg in held:
            try:
                self.perform(on_message(self.state, msg))
            except ProtocolViolation as e:
                self._refused(e)

    def _response_window_closed(self, now: float) -> bool:
        """The contract's response window (the first ``response_blocks`` of the attest phase)
        is over: the part-2 roots on chain are final."""
        if self.window_closed_at:
            return True
        end = self.rpc(lambda: self.ledger.get_phase_end(Phase.PROPOSE)) \
            + self.ledger.params.response_blocks
        if self.rpc(self.ledger.get_block) < end:
            return False
        self.window_closed_at = now
        return True

    def _part2_in(self, roots2: dict[str, bytes]) -> bool:
        """Every proposer with a part-2 root on chain delivered its part-2 upload; every key
        is in."""
        member, view = self.state.member, self.view
        assert member is not None and view is not None
        self.pump(0.0)
        bound = [view.client(p) for p in roots2 if p in self.roots1]
        return (all(c in member.roots[2] or c in member.rejected for c in bound)
                and not member.server.missing_przs())

    def _only_down_missing(self) -> bool:
        """The current opening waits only for members this peer found unreachable (their
        shares will not come: no need to wait for the timeout, which members reach at
        different times)."""
        member, view = self.state.member, self.view
        if member is None or view is None or not self.down or member.phase not in (
                MemberPhase.CONSISTENCY, MemberPhase.CHECKS, MemberPhase.FINAL,
                MemberPhase.CLOSING):
            return False
        waiting = awaited(member)
        return bool(waiting) and all(view.committee[j] in self.down for j in waiting)

    def _how_far(self, ph: Phase) -> int:
        """The last phase this peer is done with (the block producer waits for everyone)."""
        need = {Phase.BEACON: "beacon", Phase.PROPOSE: "open", Phase.COMMIT: "vote",
                Phase.REVEAL: "reveal", Phase.SETTLE: "settle"}
        if ph is Phase.ATTEST:
            member = self.state.member
            done = "commit" in self.done and (member is None or member.phase is MemberPhase.DONE
                                              or "failed" in self.done
                                              or self.deadlines >= MAX_OPENING_DEADLINES)
            return int(ph) if done else int(ph) - 1
        return int(ph) if need.get(ph, "") in self.done else int(ph) - 1

    def _ready(self, upto: int) -> None:
        if upto != self.ready:
            log.info("done with %s", Phase(upto).name.lower() if upto >= 0 else "nothing")
            self.ready = upto
            write_text_atomic(self.run_dir / "status.json", json.dumps(
                {"round": self.round, "ready": upto, "role": self.log.role,
                 "address": self.me.address}) + "\n")

    def _new_round(self, st: RoundState) -> None:
        self.joined_after_draw = self.round < 0 and st.roles_drawn
        if self.round >= 0:
            self._finish_round(st)
        self.round, self.done, self.ready = st.round, set(), -1
        self.window_closed_at = 0.0
        self.race_seen = {}
        self.down, self.deadlines, self.held = set(), 0, []
        self.log = RoundLog(st.round)
        self.phase_at = time.monotonic()

    def _finish_round(self, st: RoundState) -> None:
        """The round settled: fetch the model the chain now names, write the report."""
        old = self.state.model or st.model_hash
        if st.model_hash != old:
            before, after = self.work.fetch(old), self.work.fetch(st.model_hash)
            if after is None:
                log.warning("the settled model %s is served by no peer", st.model_hash.hex())
            elif before is not None:
                self.work.moved(before, after)
        member = self.state.member
        doc: dict[str, Any] = {**self.log.__dict__, "address": self.me.address,
                               "model": st.model_hash.hex(),
                               "bytes_sent": sum(self.net.stats.bytes_sent.values()),
                               "bytes_received": sum(self.net.stats.bytes_received.values()),
                               "transport_rejected": dict(self.net.stats.rejected)}
        if member is not None and self.view is not None:
            view = self.view
            doc["member"] = {
                "seat": view.seat(self.me.address), "done": member.phase is MemberPhase.DONE,
                "aborted": member.aborted, "output": member.output is not None,
                "verdicts": {str(c): (None if v is None else [v[0].value, v[1]])
                             for c, v in sorted(member.verdicts.items())},
                "revealed": dict(member.revealed), "cheaters": sorted(member.server.cheaters),
                "proposers": list(view.proposers), "committee": list(view.committee),
                "voters": list(view.voters)}
        voter = self.state.voter
        if voter is not None:
            doc["ballot"] = voter.accept
        write_text_atomic(self.run_dir / "reports" / f"round-{self.log.round}.json",
                          json.dumps(doc, default=str) + "\n")
        self.state.member = self.state.proposer = self.state.voter = None

    # -- main loop -------------------------------------------------------------------------------
    def run(self) -> None:
        """Register (or re-use the stake), then follow the chain until the task finishes or
        SIGTERM / SIGINT."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log.info("peer %s listening on %s (endpoint %s, %s), task %s", self.me.address,
                 self.net.address, self.cfg.endpoint,
                 "mutual TLS" if self.cfg.tls_cert else "plaintext gRPC", self.ledger.address)
        try:
            try:
                warm_up(self.work, self.state.task)
            except Exception as e:  # the round that needs it will fail and report it
                log.warning("warm-up failed: %s: %s", type(e).__name__, e)
            self.register()
            st = None
            while not self.stop:
                self.pump(self.cfg.poll)
                st = self.poll(st)
                if st.phase is Phase.FINISHED:
                    if self.round >= 0:
                        self._finish_round(st)
                    log.info("the task finished")
                    break
                self.step(st)
        finally:
            self._save_state()
            self.net.close()
            log.info("stopped")

    def poll(self, last: RoundState | None) -> RoundState:
        """The round state, re-read in full only when round, phase or roles changed (one
        batch of three view calls per poll instead of a dozen: many peers share one node).

        The contract's state and phase are functions of the chain's blocks (phases are block
        windows), so while the block number stays the same nothing can have changed: the
        poll is then one ``eth_blockNumber``, which executes no EVM code on the node."""
        block = self.rpc(self.ledger.get_block)
        if last is not None and block == self.polled_block:
            return last
        self.polled_block = block
        calls = [("round", ()), ("get_phase", ()), ("roles_drawn", ())]
        r, ph, drawn = self.rpc(lambda: self.ledger._calls(calls))
        if last is not None and (int(r), int(ph), bool(drawn)) == (last.round, last.phase,
                                                                   last.roles_drawn):
            return last
        st: RoundState = self.rpc(self.ledger.get_round_state)  # re-reads until untorn
        return st

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.info("signal %d: finishing the current step, then stopping", signum)
        self.stop = True


def _settlement_doc(s: Settlement) -> dict[str, Any]:
    return {"round": s.round, "stands": s.stands, "accepted": s.accepted,
            "model": s.model.hex(), "paid": s.paid,
            "rewards": {a: v / ETHER for a, v in s.rewards.items()},
            "slashes": [[a, r.name.lower(), v / ETHER] for a, r, v in s.slashes]}


def setup_logging(run_dir: Path, name: str) -> None:
    """A readable log: ``run_dir/peer.log`` and stderr, one line per event."""
    fmt = logging.Formatter(f"%(asctime)s.%(msecs)03d {name} %(levelname)s %(message)s",
                            "%H:%M:%S")
    root = logging.getLogger("phalanx.node")
    root.setLevel(logging.INFO)
    for h in (logging.FileHandler(run_dir / "peer.log"), logging.StreamHandler()):
        h.setFormatter(fmt)
        root.addHandler(h)


def run_peer(cfg: PeerConfig, passphrase: str | None = None) -> None:
    """``phalanx peer run``."""
    import torch

    torch.set_num_threads(1)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(cfg.run_dir, f"peer[{cfg.partition}]")
    try:
        Node(cfg, passphrase=passphrase).run()
    except PhalanxError as e:
        log.error("%s", e)
        raise
