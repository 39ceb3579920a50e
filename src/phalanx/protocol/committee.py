"""A committee member's steps in one round, from its own point of view (protocol.md §2–3).

The member is one MPC server (``mpc.server.Server``) that owns its secrets and its uploads.
Steps are synchronous; deadlines arrive as events carrying what the chain says:
- ``process_upload``: admit a proposer's signed upload of the part being collected and keep it
  (never replacing one: a second upload is refused and named);
- ``process_commit_deadline``: keep only the part-1 uploads whose commitments hash to the root
  the proposer posted on chain before the deadline, and derive coin1 from the beacon and those
  roots alone — nothing a party chooses after the deadline enters it;
- ``process_response_deadline``: derive coin2 from coin1 and the part-2 roots, and fix the
  round's public randomness in the server.
The pass, the openings and the attestation over the network are the next steps (not yet here:
``mpc.committee`` drives them in process).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from phalanx.errors import ProtocolViolation, Reject
from phalanx.mpc.coins import compute_coin, compute_root
from phalanx.mpc.server import Server
from phalanx.protocol.admission import require, verify_message
from phalanx.protocol.identity import Identity
from phalanx.protocol.messages import Kind, Signed
from phalanx.protocol.round import RoundView
from phalanx.protocol.uploads import decode_upload


class Phase(Enum):
    """Where a member is in the round."""

    COLLECT_PART1 = 1
    COLLECT_PART2 = 2
    READY = 3


@dataclass(frozen=True, slots=True)
class CommitDeadline:
    """The commitment deadline passed; ``roots``: proposer → the root it posted on chain."""

    roots: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class ResponseDeadline:
    """The part-2 deadline passed."""


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
    state.coin1 = compute_coin(view.session, view.beacon, 1, state.roots[1].items())
    state.phase = Phase.COLLECT_PART2
    return state.coin1


def process_response_deadline(state: MemberState, event: ResponseDeadline) -> bytes:
    """Fix coin2 and the round's public randomness; returns coin2."""
    require(state.phase is Phase.COLLECT_PART2 and state.coin1 is not None, Reject.WRONG_PHASE,
            state.me.address)
    assert state.coin1 is not None
    bound = {c: r for c, r in state.roots[2].items() if c in state.roots[1]}
    state.coin2 = compute_coin(state.view.session, state.view.beacon, 2, bound.items(),
                               state.coin1)
    state.server.circuit.begin(state.coin1, state.coin2)
    state.server.begin(sorted(state.roots[1]))
    state.phase = Phase.READY
    return state.coin2


def admitted(state: MemberState, msg: Signed) -> ProtocolViolation | None:
    """``process_upload`` as a node calls it: the violation instead of raising."""
    try:
        process_upload(state, msg)
    except ProtocolViolation as e:
        return e
    return None
