"""A committee member's steps in one round, from its own point of view (protocol.md §2–3).

The member is one MPC server (``mpc.server.Server``) that owns its secrets and its uploads.
Steps are synchronous; deadlines arrive as events carrying what the chain says:
- ``process_upload``: admit a proposer's signed upload of the part being collected and keep it
  (never replacing one: a second upload is refused and named);
- ``process_commit_deadline``: keep only the part-1 uploads whose commitments hash to the root
  the proposer posted on chain before the deadline, and derive coin1 from the beacon and those
  roots alone — nothing a party chooses after the deadline enters it;
- ``start_member`` / ``process_przs_key``: deal this member's PRZS keys (sealed, one
  ``PRZS_KEY`` message per key and receiver) and keep the ones dealt to it;
- ``process_response_deadline``: bind part 2 to the part-2 roots on chain, derive coin2 from
  coin1 and those roots, and fix the round's public randomness in the server. The clients of
  the round are those the chain bound (both roots posted): every member computes over the
  same list, whatever reached it, so the PRZS masks and the openings line up;
- ``process_pass``: the fused pass over every bound client; its consistency shares go to the
  other members in one ``OPENING``;
- ``process_opening`` / ``process_opening_deadline``: collect the other members' shares of the
  current opening; once all arrived (or at the deadline, the missing as erasures) decode them
  with this member's own coin — consistency (degree t), then checks (degree 2t,
  re-randomized), then the final values — reaching the verdicts and the output.
A member that lacks a bound client's upload is an erasure in that client's openings, and if
the client is accepted it abstains from the final opening (it cannot hold its share of the
sum): it is reported as not delivering, never as cheating. ``make_attestation``: what the
member signs on chain once done. Not yet here: disputes answered by the proposers' reveals
(``mpc.committee`` has them in process; here an RS-marked consistency share rejects the
client).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from phalanx.errors import ProtocolViolation, ReconstructionError, Reject
from phalanx.mpc.circuit import ClientShares, LocalResult, check_width, contributes
from phalanx.mpc.coins import compute_coin, compute_root
from phalanx.mpc.committee_client import commitment_of
from phalanx.mpc.dealt import blame_revealed, check_coin
from phalanx.mpc.field import FieldVec
from phalanx.mpc.messages import OpeningKind
from phalanx.mpc.przs import key_sets
from phalanx.mpc.server import Failure, Opener, Server
from phalanx.protocol.admission import require, verify_message
from phalanx.protocol.dealing import DealPart, Revealed, decode_deal, encode_deal, encode_reveal
from phalanx.protocol.dealing import decode_reveal as decode_zero_reveal
from phalanx.protocol.disputes import RevealedPart, decode_dispute, decode_reveal, encode_dispute
from phalanx.protocol.identity import Identity
from phalanx.protocol.messages import (
    Kind,
    Signed,
    decode,
    decode_many,
    encode,
    encode_many,
    make_signed,
)
from phalanx.protocol.openings import ROUND, decode_opening, encode_opening
from phalanx.protocol.round import RoundView
from phalanx.protocol.uploads import decode_upload

BATCH = 4
"""Clients per fused pass (as ``rules.secure.backend.SERVER_BATCH``)."""
ABORT = "committee-abort"
CLAIM: FieldVec = np.zeros(0, np.uint64)
"""A consistency item of length 0: the member holds the client's upload and it does not open
(its claim; more than t claims blame the client, since at most t members lie)."""
PRZS_MISSING = 0xFFFFFF00
"""The consistency opening's item that lists (by index in ``mpc.przs.key_sets``) the PRZS key
sets this member belongs to and never received a key for: every member then leaves those
sets out of its masks (protocol.md §3.1; docs/protocol.md, "Missing PRZS keys")."""
ZERO_MISSING = 0xFFFFFD00
"""Dealt scheme: the consistency opening's item that lists the dealers whose zero sharing this
member lacks (no ZERO_DEAL before the pass, or a payload that does not open or is not the
committed one) — docs/protocol.md, "Dealt zero sharings"."""
ZERO_CHECKS = 0xFFFFFE00
"""Dealt scheme: item ZERO_CHECKS + k holds this member's check values v_ij of label k, one per
dealer i (``mpc.dealt`` step 2)."""


class Phase(Enum):
    """Where a member is in the round."""

    COLLECT_PART1 = 1
    COLLECT_PART2 = 2
    READY = 3
    CONSISTENCY = 4
    CHECKS = 5
    FINAL = 6
    DONE = 7
    DISPUTE = 8  # after the consistency opening, while reveals are awaited
    CLOSING = 9  # after the final opening, until every member heard there said FINISHED
    ZERO_BLAME = 10  # a dealt zero sharing failed its check: members reveal what they hold


@dataclass(frozen=True, slots=True)
class CommitDeadline:
    """The commitment deadline passed; ``roots``: proposer → the root it posted on chain."""

    roots: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class ResponseDeadline:
    """The part-2 deadline passed; ``roots``: proposer → the part-2 root it posted on chain."""

    roots: dict[str, bytes]


def _no_reveals(ephemeral: bytes, recipient: bytes) -> Opener:
    raise ProtocolViolation(Reject.WRONG_PHASE, "?", "this member cannot open revealed envelopes")


@dataclass(slots=True)
class MemberState:
    """One member in one round."""

    me: Identity
    view: RoundView
    server: Server
    phase: Phase = Phase.COLLECT_PART1
    seen: set[bytes] = field(default_factory=set)
    roots: dict[int, dict[int, bytes]] = field(default_factory=lambda: {1: {}, 2: {}})
    rejected: dict[int, tuple[Reject, str]] = field(default_factory=dict)
    coin1: bytes | None = None
    coin2: bytes | None = None
    local: dict[int, tuple[ClientShares, LocalResult]] = field(default_factory=dict)
    #: the current opening's shares: sender seat → client (or ROUND) → shares
    inbox: dict[int, dict[int, FieldVec]] = field(default_factory=dict)
    #: the final values' kinds, in the order the circuit opens them
    final_kinds: tuple[OpeningKind, ...] = ()
    final_degrees: tuple[bool, ...] = ()
    verdicts: dict[int, tuple[Reject, str] | None] = field(default_factory=dict)
    output: Any = None
    revealed: dict[str, float] = field(default_factory=dict)
    aborted: str | None = None
    #: the clients the chain bound for both parts, in client order (set at the response
    #: deadline): the list every member computes over
    bound: tuple[int, ...] = ()
    #: proposer → the part-1 root it posted on chain (at the commitment deadline)
    posted: dict[str, bytes] = field(default_factory=dict)
    #: clients whose upload this member holds but cannot open (its claim, §3.4)
    claims: dict[int, str] = field(default_factory=dict)
    #: open disputes: client → the seats whose envelopes its proposer must reveal
    disputes: dict[int, set[int]] = field(default_factory=dict)
    #: client → the seats that claimed its upload does not open
    claimed: dict[int, set[int]] = field(default_factory=dict)
    #: (client, seat): the member at ``seat`` disputed its own share of the client (asked
    #: the proposer to reveal its envelope); a suspect that does not is to blame
    asked: set[tuple[int, int]] = field(default_factory=set)
    #: reveals that arrived before this member finished the consistency opening (another
    #: member disputed first): client → messages, at most m each, judged once it gets there
    early_reveals: dict[int, list[Signed]] = field(default_factory=dict)
    #: the consistency opening's shares (kept while disputes are judged)
    consistency: dict[int, dict[int, FieldVec]] = field(default_factory=dict)
    #: proposer → the part-2 root it posted on chain (at the response deadline)
    posted2: dict[str, bytes] = field(default_factory=dict)
    #: members this one identified, and how
    evidence: dict[int, str] = field(default_factory=dict)
    #: how anyone opens one envelope from its revealed ephemeral and recipient key (net)
    revealed_opener: Callable[[bytes, bytes], Opener] = field(default=_no_reveals)
    #: openings other members sent before this one reached them: (seat, stage) → message
    early: dict[tuple[int, int], Signed] = field(default_factory=dict)
    #: messages refused when they were taken in late: (peer, reason, detail)
    refusals: list[tuple[str, Reject, str]] = field(default_factory=list)
    #: (seat, stage) → the signed OPENING that member sent this one (kept as evidence)
    received: dict[tuple[int, int], Signed] = field(default_factory=dict)
    #: (seat, stage) → (relay, OPENING) of that member forwarded by others, awaiting its own
    #: copy
    forwarded: dict[tuple[int, int], list[tuple[str, Signed]]] = field(default_factory=dict)
    #: (seat, stage, "") this member forwarded to all, (seat, stage, relay) its copy sent back
    sent_evidence: set[tuple[int, int, str]] = field(default_factory=set)
    #: accepted clients whose upload never reached this member (it abstains from the final)
    missing: tuple[int, ...] = ()
    #: the seats heard in the consistency opening: only their degree-2t shares are decoded
    #: (a member not heard there may mask with key sets the others left out)
    heard: frozenset[int] = frozenset()
    #: the seats heard in the final opening (each is awaited to say FINISHED)
    final_heard: frozenset[int] = frozenset()
    #: the seats that said FINISHED
    finished: set[int] = field(default_factory=set)
    #: clients whose REVEAL this member has seen (and forwarded to every other member)
    reveals_seen: set[int] = field(default_factory=set)
    #: valid clients whose opened fltrust trust bit is 0: counted (weight 0), not accepted
    zero_trust: set[int] = field(default_factory=set)
    #: dealt scheme: (label, length) of every zero sharing of the round, in dealing order
    zero_labels: tuple[tuple[str, int], ...] = ()
    #: dealt scheme: dealer seat → its signed ZERO_DEAL to this member (kept as evidence)
    zero_deals: dict[int, Signed] = field(default_factory=dict)
    #: dealt scheme: dealer seat → its commitments per label (as it sent them to this member)
    zero_commits: dict[int, tuple[tuple[bytes, ...], ...]] = field(default_factory=dict)
    #: dealt scheme: dealers whose payload to this member did not open or was not committed
    zero_bad: set[int] = field(default_factory=set)
    #: dealt scheme: dealers whose check failed (ZERO_BLAME), and seat → what it revealed
    zero_failed: tuple[int, ...] = ()
    zero_reveals: dict[int, list[Revealed]] = field(default_factory=dict)


def start_member(state: MemberState) -> list[Signed]:
    """Deal the PRZS keys this member leads (protocol.md §3.1): one message per key; or, with
    dealt zero sharings, this member's dealing: one ZERO_DEAL per other member."""
    view = state.view
    if state.server.zero == "dealt":
        return _deal_zeros(state)
    return [make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.PRZS_KEY,
                        receiver=view.committee[r], body=bytes(sealed))
            for r, sealed in state.server.deal_przs()]


def zero_labels(state: MemberState) -> tuple[tuple[str, int], ...]:
    """The round's zero sharings, fixed by public data alone: the check masks of every
    proposer's clients (the bound ones are a subset) and each degree-2t final value."""
    server, g = state.server, check_width(state.server.circuit)
    finals = sorted(server.final_zero_lengths().items())
    return (("checks", len(state.view.proposers) * g), *finals)


def _deal_zeros(state: MemberState) -> list[Signed]:
    """Deal B + 1 zero sharings per label (``mpc.dealt`` step 1): to each other member its
    sealed payloads with every commitment (the same commitments to all)."""
    view, me = state.view, state.server.j
    state.zero_labels = zero_labels(state)
    commits: list[tuple[bytes, ...]] = []
    sealed: dict[int, list[bytes]] = {r: [] for r in range(view.m) if r != me}
    for label, length in state.zero_labels:
        public, envelopes = state.server.deal_zero(label, length)
        commits.append(tuple(public[j] for j in range(view.m)))
        for r, env in envelopes:
            sealed[r].append(bytes(env))
    state.zero_commits[me] = tuple(commits)
    return [make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.ZERO_DEAL,
                        receiver=view.committee[r],
                        body=encode_deal([DealPart(c, e) for c, e in zip(commits, envs,
                                                                         strict=True)]))
            for r, envs in sealed.items()]


def process_zero_deal(state: MemberState, msg: Signed) -> list[Signed]:
    """Keep another member's dealt zero sharings (before the pass, one dealing per dealer);
    a payload that does not open or is not the committed one is this member's complaint,
    listed in its consistency opening (docs/protocol.md, "Dealt zero sharings")."""
    view = state.view
    verify_message(msg, view, state.me.address, kinds={Kind.ZERO_DEAL},
                   senders=[a for a in view.committee if a != state.me.address],
                   seen=state.seen)
    sender = msg.header.sender
    dealer = view.seat(sender)
    # Verify this member deals zero sharings this round (not CDI keys)
    require(state.server.zero == "dealt", Reject.WRONG_PHASE, sender,
            "ZERO_DEAL in a round that re-randomizes with PRZS keys")
    if not state.zero_labels:  # a faster dealer: the labels are public, fixed by the round
        state.zero_labels = zero_labels(state)
    # Verify dealings arrive before the pass that uses them
    require(state.phase.value < Phase.READY.value, Reject.WRONG_PHASE, sender,
            "ZERO_DEAL after the pass began")
    # Verify one dealing per dealer
    require(dealer not in state.zero_commits, Reject.DUPLICATE, sender, "second ZERO_DEAL")
    # Verify it holds exactly m commitments and one payload per label of the round
    parts = decode_deal(msg.body, sender, m=view.m, labels=len(state.zero_labels))
    state.seen.add(msg.header.msg_id)
    state.zero_deals[dealer] = msg
    state.zero_commits[dealer] = tuple(p.commitments for p in parts)
    me = state.server.j
    ok = all(state.server.receive_zero(label, length, dealer, p.sealed, p.commitments[me])
             for (label, length), p in zip(state.zero_labels, parts, strict=True))
    if not ok:
        state.zero_bad.add(dealer)
        raise ProtocolViolation(Reject.BAD_BUNDLE, sender, "dealt payload does not open or "
                                "is not the committed one (listed as lacking)")
    return []


def _zero_lacking(state: MemberState) -> list[int]:
    """Dealers whose zero sharing this member does not hold (ZERO_MISSING)."""
    me = state.server.j
    return [i for i in range(state.view.m)
            if i != me and (i not in state.zero_commits or i in state.zero_bad)]


def _zero_items(state: MemberState) -> dict[int, FieldVec]:
    """The dealt scheme's consistency items: v_ij per label (each dealer's coefficients from
    its own commitments, ``dealt.check_coin``) and the dealers this member lacks."""
    held = [i for i in range(state.view.m) if i not in _zero_lacking(state)]
    items: dict[int, FieldVec] = {}
    for k, (label, _) in enumerate(state.zero_labels):
        coins = {i: check_coin(state.view.session, label,
                               [dict(enumerate(state.zero_commits[i][k]))]) for i in held}
        items[ZERO_CHECKS + k] = state.server.zero_check_values(label, coins)
    items[ZERO_MISSING] = np.array(_zero_lacking(state), np.uint64)
    return items


def process_przs_key(state: MemberState, msg: Signed) -> list[Signed]:
    """Keep a PRZS key another member dealt to this one (before the pass)."""
    view = state.view
    verify_message(msg, view, state.me.address, kinds={Kind.PRZS_KEY},
                   senders=view.committee, seen=state.seen)
    # Verify keys arrive before the pass that uses them
    require(state.phase.value < Phase.READY.value, Reject.WRONG_PHASE, msg.header.sender,
            "PRZS key after the pass began")
    state.server.receive_przs(view.seat(msg.header.sender), msg.body)
    state.seen.add(msg.header.msg_id)
    return []


def process_upload(state: MemberState, msg: Signed) -> list[Signed]:
    """Admit and keep one proposer's upload (protocol.md §2)."""
    view = state.view
    sender = msg.header.sender
    # Verify signature, binding, role, phase and novelty of the message
    verify_message(msg, view, state.me.address, kinds={Kind.UPLOAD}, senders=view.proposers,
                   seen=state.seen)
    upload = decode_upload(msg.body, sender)
    # Verify the upload is of the part being collected
    want = 1 if state.phase is Phase.COLLECT_PART1 else 2
    require(state.phase is not Phase.READY and upload.part == want, Reject.WRONG_PHASE,
            sender, f"part {upload.part} while collecting part {want}")
    # Verify the proposer was not already refused this round
    client = view.client(sender)
    require(client not in state.rejected, Reject.DUPLICATE, sender, "already refused")
    # Verify the sealed bundle is the one committed to for this member: the client signed
    # both, so a mismatch is its fault, refused here (this member then holds nothing of it, an
    # erasure) — found only at the pass, it would be a claim the revealed, committed envelope
    # disproves, and the honest member would be blamed
    seat = view.seat(state.me.address)
    require(len(upload.commitments) > seat
            and commitment_of(upload.sealed) == upload.commitments[seat],
            Reject.HASH_MISMATCH, sender, f"part-{upload.part} sealed bundle is not the one "
            "committed to")
    # Keep it, never replacing one (the server refuses a second upload of a part)
    state.server.accept_upload(client, upload.part, upload.commitments, upload.sealed,
                               upload.blob or None)
    state.roots[upload.part][client] = compute_root(upload.commitments)
    state.seen.add(msg.header.msg_id)
    return []


def process_commit_deadline(state: MemberState, event: CommitDeadline) -> bytes:
    """Bind part 1 to the chain and derive coin1 (protocol.md §3.2); returns coin1."""
    require(state.phase is Phase.COLLECT_PART1, Reject.WRONG_PHASE, state.me.address)
    view = state.view
    for client, root in list(state.roots[1].items()):
        posted = event.roots.get(view.proposers[client])
        if posted != root:
            state.server.drop(client)
            del state.roots[1][client]
            state.rejected[client] = (Reject.HASH_MISMATCH,
                                      "commitments differ from the root posted on chain"
                                      if posted else "no root posted on chain")
    state.posted = dict(event.roots)
    state.coin1 = compute_coin(view.session, view.beacon, 1, posted_roots(view, event.roots))
    state.phase = Phase.COLLECT_PART2
    return state.coin1


def posted_roots(view: RoundView, roots: dict[str, bytes]) -> list[tuple[int, bytes]]:
    """(client, root) of every proposer of the round that posted one: what the coins hash.

    Only the chain decides: every party (members, proposers, anyone) computes the same coin,
    whatever uploads reached it.
    """
    return [(c, roots[p]) for c, p in enumerate(view.proposers) if roots.get(p)]


def process_response_deadline(state: MemberState, event: ResponseDeadline) -> bytes:
    """Fix coin2 and the round's public randomness; returns coin2."""
    require(state.phase is Phase.COLLECT_PART2 and state.coin1 is not None, Reject.WRONG_PHASE,
            state.me.address)
    assert state.coin1 is not None
    view = state.view
    for client, root in list(state.roots[2].items()):
        posted = event.roots.get(view.proposers[client])
        if posted != root and client in state.roots[1]:
            state.server.drop(client)
            del state.roots[1][client]
            state.rejected[client] = (Reject.HASH_MISMATCH,
                                      "part-2 commitments differ from the root posted on chain"
                                      if posted else "no part-2 root posted on chain")
    for client in [c for c in state.roots[1] if c not in state.roots[2]]:
        state.server.drop(client)
        del state.roots[1][client]
        state.rejected[client] = (Reject.MISSED_DEADLINE, "no part 2 before the deadline")
    state.posted2 = dict(event.roots)
    state.bound = tuple(c for c, p in enumerate(view.proposers)
                        if state.posted.get(p) and event.roots.get(p))
    state.coin2 = compute_coin(view.session, view.beacon, 2,
                               [(c, event.roots[view.proposers[c]]) for c in state.bound],
                               state.coin1)
    state.server.circuit.begin(state.coin1, state.coin2)
    state.server.begin(list(state.bound))
    state.phase = Phase.READY
    return state.coin2


def _opening(state: MemberState, kind: OpeningKind, items: dict[int, FieldVec]) -> list[Signed]:
    """This member's shares of ``kind`` to every other member; its own go to its inbox (an
    abstaining member sends an empty opening and keeps nothing). Then the shares other
    members sent early for this opening are taken in."""
    view, me = state.view, state.server.j
    state.inbox = {me: items}
    body = encode_opening(kind, items)
    out = [make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.OPENING,
                       receiver=member, body=body)
           for j, member in enumerate(view.committee) if j != me]
    return out + _replay_early(state)


def _kind_rank(kind: OpeningKind) -> int:
    return {OpeningKind.CONSISTENCY: 0, OpeningKind.CHECKS: 1}.get(kind, 2)


def _phase_rank(phase: Phase) -> int:
    return {Phase.CONSISTENCY: 0, Phase.DISPUTE: 0, Phase.CHECKS: 1, Phase.FINAL: 2,
            Phase.CLOSING: 3, Phase.DONE: 3}.get(phase, -1)


def _replay_early(state: MemberState) -> list[Signed]:
    rank = _phase_rank(state.phase)
    out: list[Signed] = []
    for key in sorted(k for k in state.early if k[1] == rank):
        msg = state.early.pop(key)
        if _phase_rank(state.phase) != rank:  # an earlier replay completed this opening
            state.early[key] = msg
            continue
        try:
            out += process_opening(state, msg)
        except ProtocolViolation as e:
            state.refusals.append((str(e.peer), e.reason, e.detail))
    return out


def process_pass(state: MemberState) -> list[Signed]:
    """Run the fused pass over every bound client this member holds, and open their
    consistency values."""
    require(state.phase is Phase.READY, Reject.WRONG_PHASE, state.me.address)
    held = [c for c in state.bound if c in state.roots[1] and c in state.roots[2]]
    for k in range(0, len(held), BATCH):
        batch = held[k:k + BATCH]
        for c, got in zip(batch, state.server.local_batch(batch), strict=True):
            if isinstance(got, Failure):  # its claim; an erasure in the client's openings
                state.claims[c] = f"member {state.server.j}: {got.detail}"
            else:
                state.local[c] = got
    state.phase = Phase.CONSISTENCY
    items = {c: Server.consistency_share(r) for c, (_, r) in state.local.items()}
    items.update({c: CLAIM for c in state.claims})  # "I hold it and it does not open"
    if state.server.zero == "dealt":
        items.update(_zero_items(state))
        return _opening(state, OpeningKind.CONSISTENCY, items)
    sets = key_sets(state.view.m, state.view.t)
    lacking = state.server.missing_przs()
    if lacking:  # "I never received these keys": every member leaves them out
        items[PRZS_MISSING] = np.array(sorted(sets.index(a) for a in lacking), np.uint64)
    return _opening(state, OpeningKind.CONSISTENCY, items)


def process_opening(state: MemberState, msg: Signed) -> list[Signed]:
    """Admit another member's shares of the current opening; decode when all are in."""
    view = state.view
    verify_message(msg, view, state.me.address, kinds={Kind.OPENING},
                   senders=[a for j, a in enumerate(view.committee)
                            if j not in state.server.cheaters], seen=state.seen)
    sender = msg.header.sender
    kind, items = decode_opening(msg.body, sender)
    seat = view.seat(sender)
    if _kind_rank(kind) > _phase_rank(state.phase) and _phase_rank(state.phase) < 3:
        # a faster member's next opening: kept (one per member and stage) until this one
        # gets there, so that arrival order between members never loses a share
        require((seat, _kind_rank(kind)) not in state.early, Reject.DUPLICATE, sender,
                f"second early {kind.value} shares")
        state.early[(seat, _kind_rank(kind))] = msg
        return []
    # Verify the shares are of the opening under way
    require(kind in _expected(state), Reject.WRONG_PHASE, sender,
            f"{kind.value} shares during {state.phase.name}")
    # Verify the member sends one set of shares per opening
    require(seat not in state.inbox, Reject.DUPLICATE, sender, f"second {kind.value} shares")
    # Verify it covers only the round's bound clients (or the round-level values)
    allowed = set(state.bound) if state.phase is not Phase.FINAL else set(_final_keys(state))
    if kind is OpeningKind.CONSISTENCY and state.server.zero == "dealt":
        allowed |= _check_zero_items(state, seat, items, sender)
    elif kind is OpeningKind.CONSISTENCY:
        allowed.add(PRZS_MISSING)
        _check_missing_przs(state, seat, items.get(PRZS_MISSING), sender)
    require(set(items) <= allowed, Reject.MALFORMED, sender, "shares of clients not bound")
    state.seen.add(msg.header.msg_id)
    state.inbox[seat] = items
    state.received[(seat, _kind_rank(kind))] = msg
    out: list[Signed] = []
    phase = state.phase
    for relay, other in state.forwarded.pop((seat, _kind_rank(kind)), []):
        out += _compare(state, seat, msg, other, relay)
    if seat in state.server.cheaters:  # it equivocated: the disputes it was in are settled
        out += _settle_disputes(state)
    if state.phase is phase and not awaited(state):
        out += _advance(state)
    return out


def awaited(state: MemberState) -> set[int]:
    """The seats whose message the current step still waits for: the opening's shares of
    every member not identified, or FINISHED of every member heard in the final opening."""
    cheaters = state.server.cheaters
    if state.phase is Phase.CLOSING:
        return set(state.final_heard) - cheaters - state.finished - {state.server.j}
    if state.phase is Phase.ZERO_BLAME:
        return set(state.consistency) - cheaters - set(state.zero_reveals)
    if state.phase in (Phase.CONSISTENCY, Phase.CHECKS, Phase.FINAL):
        return {j for j in range(state.view.m) if j not in cheaters and j not in state.inbox}
    return set()


def can_open(state: MemberState) -> bool:
    """Whether a deadline now would open the current opening without losing anything to a
    merely slow member: every pending client's shares held by the m - t members its step
    requires (``_delivered``, else it is rejected as missing the deadline), and each final
    value's by degree + 1 members (else the round aborts). protocol.md §3.4: openings succeed
    while enough shares remain; a driver waits longer for fewer (docs/network.md, "Slow
    members")."""
    t = state.view.t
    if state.phase is Phase.CONSISTENCY:
        return all(_delivered(state, c, t) for c in _pending(state))
    if state.phase is Phase.CHECKS:
        return all(_delivered(state, c, 2 * t) for c in _pending(state))
    if state.phase is Phase.FINAL:
        degrees = [2 * t if high else t for high in state.final_degrees]
        return all(len(_holders(state, ROUND - code, d)) >= d + 1
                   for code, d in enumerate(degrees))
    return True


def process_evidence(state: MemberState, msg: Signed) -> list[Signed]:
    """Another member forwards a message a third party signed (docs/protocol.md,
    "Equivocation" and "Forwarding"):
    - an OPENING whose share it marked (protocol.md §3.1: a member sends the same shares to
      every member). If this member's copy differs, the sender equivocated — two messages it
      signed prove it — and is identified here too, so that honest members name the same
      members;
    - a member's DISPUTE or a proposer's REVEAL (§3.4), so that every member judges a dispute
      from the same messages whoever they were sent to.
    """
    view = state.view
    verify_message(msg, view, state.me.address, kinds={Kind.EVIDENCE}, senders=view.committee,
                   seen=state.seen)
    relay = msg.header.sender
    inner = decode(msg.body, relay)
    state.seen.add(msg.header.msg_id)
    kind = _verify_forwarded(state, inner, relay)
    if kind is Kind.DISPUTE:
        return _take_dispute(state, inner)
    if kind is Kind.REVEAL:
        return _take_reveal(state, inner)
    return _take_marked(state, inner, relay)


def _verify_forwarded(state: MemberState, inner: Signed, relay: str) -> Kind:
    """Verify a forwarded message: of this round, signed by the party that sends its kind,
    addressed to a member (or, a DISPUTE, to the client's proposer)."""
    view, kind = state.view, inner.header.kind
    # Verify it is a kind members forward
    require(kind in (Kind.OPENING, Kind.DISPUTE, Kind.REVEAL), Reject.MALFORMED, relay,
            f"forwarded {kind.name}")
    senders = view.proposers if kind is Kind.REVEAL else view.committee
    receivers = (*view.committee, *view.proposers) if kind is Kind.DISPUTE else view.committee
    # Verify the forwarded message was sent to a party that could forward it
    require(inner.header.receiver in receivers, Reject.MALFORMED, relay,
            f"forwarded {kind.name} addressed to {inner.header.receiver}")
    verify_message(inner, view, inner.header.receiver,
                   kinds={Kind.OPENING, Kind.DISPUTE, Kind.REVEAL}, senders=senders, seen=())
    return kind


def _take_marked(state: MemberState, inner: Signed, relay: str) -> list[Signed]:
    """A forwarded OPENING: compare with this member's own copy (or keep it until it
    arrives)."""
    view = state.view
    kind, _ = decode_opening(inner.body, inner.header.sender)
    key = (view.seat(inner.header.sender), _kind_rank(kind))
    own = state.received.get(key)
    if own is None:
        kept = state.forwarded.setdefault(key, [])
        require(len(kept) < 2 * view.m, Reject.DUPLICATE, relay, "more evidence than members")
        kept.append((relay, inner))
        return []
    out = _compare(state, key[0], own, inner, relay) + _settle_disputes(state)
    return out + _close(state)


def _compare(state: MemberState, seat: int, own: Signed, other: Signed,
             relay: str) -> list[Signed]:
    """Identify ``seat`` if its two signed copies differ; then send the relay this member's
    copy (so that it too holds both, and names the same member without waiting)."""
    if seat == state.server.j or own.body == other.body:
        return []
    kind, _ = decode_opening(own.body, "")
    state.server.cheaters.add(seat)
    state.evidence[seat] = (f"sent different shares of one {kind.value} opening to different "
                            "members (both signed)")
    key = (seat, _kind_rank(kind), relay)
    if key in state.sent_evidence or relay == state.view.committee[seat]:
        return []
    state.sent_evidence.add(key)
    view = state.view
    return [make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.EVIDENCE,
                        receiver=relay, body=encode(own))]


def _settle_disputes(state: MemberState) -> list[Signed]:
    """Suspects identified meanwhile need no reveal: a dispute left with none is closed (the
    client kept), and with none open the checks begin."""
    if state.phase is not Phase.DISPUTE:
        return []
    for c in list(state.disputes):
        state.disputes[c] -= state.server.cheaters
        if not state.disputes[c]:
            del state.disputes[c]
    return [] if state.disputes else _start_checks(state)


def _forward(state: MemberState, seats: set[int]) -> list[Signed]:
    """EVIDENCE of the current opening: the marked members' signed messages, to every other
    member (once per member and stage)."""
    view, rank = state.view, _phase_rank(state.phase)
    out = []
    for seat in sorted(seats):
        msg = state.received.get((seat, rank))
        if msg is None or (seat, rank, "") in state.sent_evidence:
            continue
        state.sent_evidence.add((seat, rank, ""))
        body = encode(msg)
        out += [make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.EVIDENCE,
                            receiver=a, body=body)
                for j, a in enumerate(view.committee) if j not in (seat, state.server.j)]
    return out


def _check_missing_przs(state: MemberState, seat: int, listed: FieldVec | None,
                        sender: str) -> None:
    """Verify a member lists only key sets it belongs to, each once (it cannot make the
    others drop a set of honest members only, so the masks stay private)."""
    if listed is None:
        return
    sets = key_sets(state.view.m, state.view.t)
    idx = [int(i) for i in listed]
    require(len(set(idx)) == len(idx) and all(i < len(sets) and seat in sets[i] for i in idx),
            Reject.MALFORMED, sender, "lists PRZS key sets it does not belong to")


def _check_zero_items(state: MemberState, seat: int, items: dict[int, FieldVec],
                      sender: str) -> set[int]:
    """Verify a member's dealt-scheme items: one check vector of m values per label and a list
    of distinct other dealers it lacks; returns their keys."""
    m, keys = state.view.m, {ZERO_CHECKS + k for k in range(len(state.zero_labels))}
    require(all(k in items and items[k].shape == (m,) for k in keys), Reject.MALFORMED,
            sender, "dealt zero sharings' check values missing or not one per dealer")
    listed = [int(i) for i in items.get(ZERO_MISSING, ())]
    require(ZERO_MISSING in items and len(set(listed)) == len(listed)
            and all(i < m and i != seat for i in listed), Reject.MALFORMED, sender,
            "lists dealers it lacks more than once, out of range or itself")
    return keys | {ZERO_MISSING}


def _agree_zero(state: MemberState) -> list[int]:
    """After the consistency opening (dealt scheme): a dealer more than t heard members lack
    is corrupt (at most t lie) — identified and left out of every extraction by all; a member
    that lacks any other dealer abstains from the re-randomized openings (it cannot hold its
    masks). Then every remaining dealer's check column must decode as a zero codeword of
    degree 2t with no error; returns the dealers whose column does not (empty: the masks are
    extracted)."""
    view, server, t = state.view, state.server, state.view.t
    lists = {j: {int(i) for i in items[ZERO_MISSING]} for j, items in state.inbox.items()
             if ZERO_MISSING in items}
    dropped = {i for i in range(view.m) if sum(i in got for got in lists.values()) > t}
    for i in sorted(dropped - server.cheaters):
        server.cheaters.add(i)
        state.evidence[i] = "more than t members lack its dealt zero sharing"
    state.heard = frozenset(j for j in lists if not lists[j] - dropped)
    failed = []
    for i in range(view.m):
        if i in dropped:
            continue
        for k in range(len(state.zero_labels)):
            column = {j: state.inbox[j][ZERO_CHECKS + k][i:i + 1] for j in state.heard}
            try:
                got = server.decode(column, 2 * t)
            except ReconstructionError:
                failed.append(i)
                break
            if got.bad or int(got.value[0]) != 0:
                failed.append(i)
                break
    if failed:
        return failed
    for label, length in state.zero_labels:
        server.finish_zero(label, length, drop=dropped)
    g = check_width(server.circuit)
    server.check_zero = server.zero_masks.pop("checks")[:len(state.bound) * g].copy()
    return []


def _start_zero_blame(state: MemberState, failed: list[int]) -> list[Signed]:
    """A dealt check failed: reveal to every other member the payloads this member was dealt
    by each failed dealer, with the dealer's signed ZERO_DEAL (its proof of the commitments),
    and wait for theirs (the round then aborts, naming whom ``dealt.blame_revealed`` names)."""
    view, me, server = state.view, state.server.j, state.server
    state.phase = Phase.ZERO_BLAME
    state.consistency = dict(state.inbox)
    state.zero_failed = tuple(failed)
    mine = []
    for i in failed:
        payloads = [server.dealt_payload(label, i) for label, _ in state.zero_labels]
        if i in _zero_lacking(state) or any(p is None for p in payloads):
            continue
        deal = b"" if i == me else encode(state.zero_deals[i])
        mine.append(Revealed(i, deal, tuple(p for p in payloads if p is not None)))
    state.zero_reveals[me] = mine
    body = encode_reveal(mine)
    out = [make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.ZERO_REVEAL,
                       receiver=a, body=body)
           for j, a in enumerate(view.committee) if j != me]
    if not awaited(state):
        out += _blame_zero(state)
    return out


def process_zero_reveal(state: MemberState, msg: Signed) -> list[Signed]:
    """Keep another member's reveal of the payloads failed dealers dealt it (one per member;
    it may arrive before this member decoded the consistency opening)."""
    view = state.view
    verify_message(msg, view, state.me.address, kinds={Kind.ZERO_REVEAL},
                   senders=view.committee, seen=state.seen)
    sender = msg.header.sender
    seat = view.seat(sender)
    # Verify reveals come once the checks are decoded, before the masks are used
    require(state.server.zero == "dealt" and state.phase in (Phase.CONSISTENCY,
                                                               Phase.ZERO_BLAME),
            Reject.WRONG_PHASE, sender, f"ZERO_REVEAL during {state.phase.name}")
    # Verify one reveal per member
    require(seat not in state.zero_reveals, Reject.DUPLICATE, sender, "second ZERO_REVEAL")
    got = decode_zero_reveal(msg.body, sender, m=view.m, labels=len(state.zero_labels))
    state.seen.add(msg.header.msg_id)
    state.zero_reveals[seat] = got
    if state.phase is Phase.ZERO_BLAME and not awaited(state):
        return _blame_zero(state)
    return []


def _deal_copy(state: MemberState, dealer: int, revealer: int,
               item: Revealed) -> tuple[tuple[bytes, ...], ...] | None:
    """The commitments ``dealer`` signed to ``revealer`` (from the revealed ZERO_DEAL; this
    member's own copy for itself), or None when the revealed message is not such a one."""
    view = state.view
    if revealer == state.server.j:
        return state.zero_commits.get(dealer)
    if revealer == dealer:
        return None
    try:
        inner = decode(item.deal, view.committee[revealer])
        verify_message(inner, view, view.committee[revealer], kinds={Kind.ZERO_DEAL},
                       senders=[view.committee[dealer]], seen=())
        parts = decode_deal(inner.body, view.committee[dealer], m=view.m,
                            labels=len(state.zero_labels))
    except ProtocolViolation:
        return None
    return tuple(p.commitments for p in parts)


def _blame_zero(state: MemberState) -> list[Signed]:
    """Name who made each failed check fail and abort the round (identified abort, §3.4):
    two differing signed commitment lists name the dealer (it equivocated); a revealed
    ZERO_DEAL that is not the dealer's names the revealer; else ``dealt.blame_revealed``."""
    view, server = state.view, state.server
    named: dict[int, str] = {}
    for i in state.zero_failed:
        copies: dict[int, tuple[tuple[bytes, ...], ...]] = {}
        payloads: dict[int, tuple[bytes, ...]] = {}
        for j, items in state.zero_reveals.items():
            for item in items:
                if item.dealer != i:
                    continue
                copy = _deal_copy(state, i, j, item)
                if copy is None and j != i:
                    named.setdefault(j, f"revealed a ZERO_DEAL of member {i} it never sent")
                    continue
                if copy is not None:
                    copies[j] = copy
                payloads[j] = item.payloads
        if own := state.zero_commits.get(i):
            copies.setdefault(server.j, own)
        if len(set(copies.values())) > 1:
            named.setdefault(i, "signed different dealt commitments to different members")
            continue
        if not copies:
            named.setdefault(i, "its dealt zero sharing failed its check and no member "
                                "holds its signed commitments")
            continue
        commits = next(iter(copies.values()))
        for k, (label, length) in enumerate(state.zero_labels):
            reported = {j: int(items[ZERO_CHECKS + k][i])
                        for j, items in state.consistency.items() if j in state.heard}
            coin = check_coin(view.session, label, [dict(enumerate(commits[k]))])
            culprits, bad = blame_revealed(
                {j: p[k] for j, p in payloads.items()}, dict(enumerate(commits[k])),
                dealer=i, m=view.m, t=view.t, label=label, length=length, coin=coin,
                reported=reported)
            for c in culprits:
                named.setdefault(c, f"dealt zero sharing {label!r} of member {i}: " + (
                    "its dealing is not a committed zero sharing of degree 2t" if bad
                    else "sent a check value the revealed dealing does not give"))
    for j, how in named.items():
        server.cheaters.add(j)
        state.evidence[j] = how
    state.aborted = (f"{ABORT}: dealt zero sharing of member(s) {list(state.zero_failed)} "
                     f"failed its check; identified {sorted(named)}")
    state.phase = Phase.DONE
    return []


def process_opening_deadline(state: MemberState) -> list[Signed]:
    """The opening's (or the dispute's) deadline: decode with what arrived (missing shares
    are erasures; unanswered disputes blame their clients)."""
    if state.phase is Phase.ZERO_BLAME:
        return _blame_zero(state)
    if state.phase not in (Phase.CONSISTENCY, Phase.DISPUTE, Phase.CHECKS, Phase.FINAL,
                           Phase.CLOSING):
        return []
    return _advance(state)


def _expected(state: MemberState) -> set[OpeningKind]:
    return {Phase.CONSISTENCY: {OpeningKind.CONSISTENCY}, Phase.CHECKS: {OpeningKind.CHECKS},
            Phase.FINAL: set(state.final_kinds)}.get(state.phase, set())


def _final_keys(state: MemberState) -> list[int]:
    return [ROUND - code for code in range(len(state.final_kinds))]


def _claimers(state: MemberState, client: int) -> set[int]:
    """Members whose consistency item for ``client`` is a claim (empty)."""
    return {j for j, items in state.inbox.items()
            if client in items and items[client].shape[0] == 0}


def _holders(state: MemberState, key: int, degree: int) -> dict[int, FieldVec]:
    """The shares of ``key`` to decode: non-empty, and for a re-randomized (degree-2t)
    opening only from members heard in the consistency opening."""
    masked = degree > state.view.t
    return {j: items[key] for j, items in state.inbox.items()
            if key in items and items[key].shape[0] and (not masked or j in state.heard)}


def _decode(state: MemberState, key: int, degree: int,
            mark: bool = True) -> tuple[FieldVec, tuple[int, ...]]:
    view = _holders(state, key, degree)
    got = state.server.decode(view, degree)
    if mark:
        state.server.cheaters.update(got.bad)
    return got.value, got.bad


def _pending(state: MemberState) -> list[int]:
    """Bound clients without a verdict yet."""
    return [c for c in state.bound if c not in state.verdicts]


def _delivered(state: MemberState, client: int, degree: int) -> bool:
    """Whether enough members hold the client's upload to open its values: all but t (at
    most t members may withhold shares, so an honest client always gets there)."""
    return len(_holders(state, client, degree)) >= state.view.m - state.view.t


def _advance(state: MemberState) -> list[Signed]:
    t = state.view.t
    try:
        if state.phase is Phase.CONSISTENCY:
            if state.server.zero != "dealt":
                _agree_przs(state)
            elif bad_dealers := _agree_zero(state):
                return _start_zero_blame(state, bad_dealers)
            marked: set[int] = set()
            for c in _pending(state):
                claims = _claimers(state, c)
                if len(claims) > t:
                    _reject(state, c, Reject.BAD_BUNDLE,
                            f"{len(claims)} members (more than t) hold an upload that "
                            "does not open")
                    continue
                if not _delivered(state, c, t):
                    _reject(state, c, Reject.MISSED_DEADLINE,
                            "its upload reached fewer than m - t members")
                    continue
                _, bad = _decode(state, c, t, mark=False)  # suspects until the dispute
                marked.update(bad)
                if bad or claims:
                    state.disputes[c] = set(bad) | claims
                    state.claimed[c] = claims
            evidence = _forward(state, marked)
            if state.disputes:
                return evidence + _open_disputes(state)
            return evidence + _start_checks(state)
        if state.phase is Phase.DISPUTE:
            _dispute_deadline(state)
            return _start_checks(state)
        if state.phase is Phase.CHECKS:
            before = set(state.server.cheaters)
            for c in _pending(state):
                if not _delivered(state, c, 2 * t):
                    _reject(state, c, Reject.MISSED_DEADLINE,
                            "its check shares reached fewer than m - t members")
                    continue
                values, _ = _decode(state, c, 2 * t)
                reasons = state.server.circuit.check_reasons
                failed = [r for r, v in zip(reasons, values[:len(reasons)], strict=True)
                          if int(v) != 0]
                if failed:
                    _reject(state, c, failed[0], "check value is not 0")
                else:
                    state.verdicts[c] = None
                    if not contributes(state.server.circuit,
                                       [int(v) for v in values[len(reasons):]]):
                        state.zero_trust.add(c)
            evidence = _forward(state, state.server.cheaters - before)
            state.missing = tuple(c for c in get_counted(state) if c not in state.local)
            finals = state.server.final_shares()
            state.final_kinds = tuple(f.kind for f in finals)
            state.final_degrees = tuple(f.degree_2t for f in finals)
            state.phase = Phase.FINAL
            if state.missing:  # it cannot hold its share of the sum: it abstains
                return evidence + _opening(state, finals[0].kind, {})
            items = {ROUND - code: f.values for code, f in enumerate(finals)}
            return evidence + _opening(state, finals[0].kind, items)
        if state.phase is Phase.FINAL:
            opened = {}
            for code, kind in enumerate(state.final_kinds):
                degree = 2 * t if state.final_degrees[code] else t
                opened[kind], _ = _decode(state, ROUND - code, degree)
            counted = len(get_counted(state))
            state.output, state.revealed = state.server.circuit.finish(opened, counted)
            return _finished(state)
        if state.phase is Phase.CLOSING:  # a member heard in the final said nothing more
            state.phase = Phase.DONE
    except ReconstructionError as e:
        state.aborted = f"{ABORT}: {state.phase.name.lower()} opening: {e}"
        if state.phase is Phase.FINAL:  # the others heard it there: they wait for it
            return _finished(state)
        state.phase = Phase.DONE
    return []


def _finished(state: MemberState) -> list[Signed]:
    """Done with the final opening: tell every other member, with the signed openings of
    every member this one identified (the proof each needs to name the same members before
    it attests: docs/protocol.md, "Equivocation"), and wait for theirs."""
    view, me = state.view, state.server.j
    state.final_heard = frozenset(state.inbox)
    state.phase = Phase.CLOSING
    proof = [state.received[key] for key in sorted(state.received)
             if key[0] in state.server.cheaters]
    body = encode_many(proof)
    out = [make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.FINISHED,
                       receiver=member, body=body)
           for j, member in enumerate(view.committee) if j != me]
    return out + _close(state)


def _close(state: MemberState) -> list[Signed]:
    """Attest-ready (DONE) once every member heard in the final opening said FINISHED."""
    if state.phase is Phase.CLOSING and not awaited(state):
        state.phase = Phase.DONE
    return []


def process_finished(state: MemberState, msg: Signed) -> list[Signed]:
    """Another member finished the final opening: check the signed openings it names as
    identified against this member's own copies (two differing copies of one opening prove
    equivocation), then close once no one is awaited."""
    view = state.view
    verify_message(msg, view, state.me.address, kinds={Kind.FINISHED}, senders=view.committee,
                   seen=state.seen)
    sender = msg.header.sender
    seat = view.seat(sender)
    # Verify one FINISHED per member
    require(seat not in state.finished, Reject.DUPLICATE, sender, "second FINISHED")
    proof = decode_many(msg.body, sender, limit=3 * view.m)
    for inner in proof:
        # Verify each is a member's opening of this round (what the sender says it marked)
        require(_verify_forwarded(state, inner, sender) is Kind.OPENING, Reject.MALFORMED,
                sender, "FINISHED lists a message that is not an opening")
    state.seen.add(msg.header.msg_id)
    state.finished.add(seat)
    out: list[Signed] = []
    for inner in proof:
        out += _take_marked(state, inner, sender)
    return out + _close(state)


def _agree_przs(state: MemberState) -> None:
    """Leave out of the masks every key set a member heard here never received; only the
    members heard here take part in the re-randomized openings."""
    sets = key_sets(state.view.m, state.view.t)
    state.heard = frozenset(state.inbox)
    skip = {sets[int(i)] for items in state.inbox.values()
            for i in items.get(PRZS_MISSING, ())}
    if skip:
        state.server.skip_przs(skip)


def _start_checks(state: MemberState) -> list[Signed]:
    state.phase = Phase.CHECKS
    return _opening(state, OpeningKind.CHECKS,
                    {c: state.server.check_share(c, r) for c, (_, r) in state.local.items()})


def _open_disputes(state: MemberState) -> list[Signed]:
    """Where this member is itself a suspect (its share disagreed, or it claimed the upload
    does not open), dispute its own share: ask the client's proposer to reveal its envelope,
    and tell every other member that it asked (§3.4)."""
    me = state.server.j
    state.phase = Phase.DISPUTE
    state.consistency = dict(state.inbox)
    out = []
    for c, seats in sorted(state.disputes.items()):
        if me not in seats:
            continue
        state.asked.add((c, me))
        out += dispute_messages(state, c)
    early, state.early_reveals = state.early_reveals, {}
    for msg in (m for c in sorted(early) if c in state.disputes for m in early[c]):
        if state.phase is not Phase.DISPUTE:
            break
        try:
            out += _take_reveal(state, msg)
        except ProtocolViolation as e:
            state.refusals.append((str(e.peer), e.reason, e.detail))
    return out


def dispute_messages(state: MemberState, client: int) -> list[Signed]:
    """This member's DISPUTE of its own share of ``client``: to the client's proposer and to
    every other member."""
    view, me = state.view, state.server.j
    body = encode_dispute(client, me)
    return [make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.DISPUTE,
                        receiver=receiver, body=body)
            for receiver in (view.proposers[client],
                             *(a for j, a in enumerate(view.committee) if j != me))]


def process_dispute_notice(state: MemberState, msg: Signed) -> list[Signed]:
    """Another member disputed its own share of a client: keep that it asked (a suspect that
    did not ask is blamed at the dispute deadline; one that asked and got no reveal is not),
    and forward the notice to every other member (a member that tells only some would
    otherwise be judged differently by the others)."""
    view = state.view
    verify_message(msg, view, state.me.address, kinds={Kind.DISPUTE}, senders=view.committee,
                   seen=state.seen)
    sender = msg.header.sender
    client, seat = decode_dispute(msg.body, sender)
    # Verify a member disputes only its own share, of a client the chain bound
    require(seat == view.seat(sender) and client in state.bound, Reject.MALFORMED, sender,
            f"dispute of client {client}, seat {seat}")
    # Verify the disputes are still open here
    require(state.phase in (Phase.READY, Phase.CONSISTENCY, Phase.DISPUTE), Reject.WRONG_PHASE,
            sender, f"dispute during {state.phase.name}")
    state.seen.add(msg.header.msg_id)
    return _take_dispute(state, msg)


def _take_dispute(state: MemberState, msg: Signed) -> list[Signed]:
    """Keep a (verified) DISPUTE, the first time this member sees it, and forward it."""
    view = state.view
    sender = msg.header.sender
    client, seat = decode_dispute(msg.body, sender)
    if seat != view.seat(sender) or client not in state.bound or (client, seat) in state.asked \
            or state.phase not in (Phase.READY, Phase.CONSISTENCY, Phase.DISPUTE):
        return []  # not its own seat, already known, or too late to count (a forwarded copy)
    state.asked.add((client, seat))
    return _forward_message(state, msg, skip={sender})


def _forward_message(state: MemberState, msg: Signed, skip: set[str]) -> list[Signed]:
    """EVIDENCE carrying ``msg`` to every other member but ``skip``."""
    view, body = state.view, encode(msg)
    return [make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.EVIDENCE,
                        receiver=a, body=body)
            for a in view.committee if a != state.me.address and a not in skip]


def _dispute_deadline(state: MemberState) -> None:
    """No reveal came: a suspect that asked for one leaves the client to blame (its proposer
    did not back its envelope); a suspect that did not ask is identified (an honest member
    always defends its share, so only a corrupt one stays silent)."""
    for c, seats in sorted(state.disputes.items()):
        askers = {j for j in seats if (c, j) in state.asked}
        for j in sorted(seats - askers):
            state.server.cheaters.add(j)
            state.evidence[j] = (f"its share of client {c} disagreed, or it claimed the "
                                 "upload does not open, and it did not dispute it")
        if askers:
            _reject(state, c, Reject.INCONSISTENT_SHARING if not state.claimed.get(c)
                    else Reject.BAD_BUNDLE, "no reveal answered the dispute in time")
    state.disputes.clear()


def process_reveal(state: MemberState, msg: Signed) -> list[Signed]:
    """Judge a dispute from the envelopes the proposer re-sent with their ephemerals: a claim
    that holds, or a consistency share the committed bundle confirms, blames the client; a
    story that fails blames the member (identified, protocol.md §3.4)."""
    view = state.view
    verify_message(msg, view, state.me.address, kinds={Kind.REVEAL}, senders=view.proposers,
                   seen=state.seen)
    state.seen.add(msg.header.msg_id)
    return _take_reveal(state, msg)


def _take_reveal(state: MemberState, msg: Signed) -> list[Signed]:
    """A verified REVEAL, sent to this member or forwarded: forward it to every member the
    first time (a proposer that reveals to some members only cannot split their verdicts),
    keep it until this member's consistency opening is decoded, then judge it."""
    view = state.view
    sender = msg.header.sender
    client = view.client(sender)
    parts = decode_reveal(msg.body, sender)
    out: list[Signed] = []
    if client not in state.reveals_seen:
        state.reveals_seen.add(client)
        out = _forward_message(state, msg, skip={msg.header.receiver})
    if state.phase in (Phase.READY, Phase.CONSISTENCY):  # a faster member disputed first
        kept = state.early_reveals.setdefault(client, [])
        require(len(kept) < 2 * view.m, Reject.DUPLICATE, sender, "more reveals than members")
        kept.append(msg)
        return out
    if state.phase is not Phase.DISPUTE or client not in state.disputes:
        return out  # no dispute of it open here (judged already, or never disputed here)
    return out + _judge_reveal(state, client, sender, parts)


def _judge_reveal(state: MemberState, client: int, sender: str,
                  parts: dict[int, tuple[RevealedPart, RevealedPart]]) -> list[Signed]:
    for j, (p1, p2) in sorted(parts.items()):
        if j not in state.disputes.get(client, ()):
            continue
        # Verify the re-sent commitments are the ones the chain bound
        require(compute_root(p1.commitments) == state.posted.get(sender)
                and compute_root(p2.commitments) == state.posted2.get(sender),
                Reject.HASH_MISMATCH, sender, "revealed commitments are not the posted roots")
        if _judge(state, client, j, p1, p2):
            state.disputes.pop(client, None)
            break
        state.disputes[client].discard(j)
    if client in state.disputes and not state.disputes[client]:
        del state.disputes[client]
    return [] if state.disputes else _start_checks(state)


def _judge(state: MemberState, client: int, j: int, p1: RevealedPart,
           p2: RevealedPart) -> bool:
    """True when the client is to blame (and rejected); otherwise member ``j`` is identified."""
    server, key = state.server, state.view.member_keys[j]
    for part, p in ((1, p1), (2, p2)):
        if server.committed(client, part) is None:  # it never held the upload: bind it now
            server.accept_upload(client, part, p.commitments, None)
    openers = {1: state.revealed_opener(p1.ephemeral, key),
               2: state.revealed_opener(p2.ephemeral, key)}
    if j in state.claimed.get(client, ()):
        holds = any(server.verify_claim(client, part, j, p.sealed, openers[part])
                    for part, p in ((1, p1), (2, p2)))
        if holds:
            _reject(state, client, Reject.BAD_BUNDLE,
                    f"member {j}'s claim holds: its revealed envelope does not open")
            return True
        server.cheaters.add(j)
        state.evidence[j] = f"false claim that client {client}'s upload does not open"
        return False
    value = server.recompute_consistency(client, j, {1: p1.sealed, 2: p2.sealed}, openers)
    sent = int(state.consistency[j][client][0])
    if value is None or value == sent:
        _reject(state, client, Reject.INCONSISTENT_SHARING,
                f"member {j}'s share is what the client's committed bundle gives"
                if value is not None else "its revealed envelope does not open")
        return True
    server.cheaters.add(j)
    state.evidence[j] = f"consistency share for client {client} is not its committed bundle's"
    return False


def _reject(state: MemberState, client: int, reason: Reject, detail: str) -> None:
    if client in state.local:
        shares, local = state.local.pop(client)
        state.server.rollback(shares, local)
    state.verdicts[client] = (reason, detail)


def get_counted(state: MemberState) -> list[int]:
    """The clients whose inputs are in the aggregate (they passed every check)."""
    return sorted(c for c, v in state.verdicts.items() if v is None)


def get_accepted(state: MemberState) -> list[int]:
    """The clients attested as accepted (paid): counted, except those whose revealed trust
    bit is 0 (fltrust with ``trust_bit``: weight 0, in neither list; docs/economics.md)."""
    return [c for c in get_counted(state) if c not in state.zero_trust]


def get_output(state: MemberState) -> np.ndarray | None:
    """The aggregate this member computed, or None (not done, or aborted)."""
    return None if state.aborted else state.output
