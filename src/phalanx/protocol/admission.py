"""Admission of a protocol message, before anything of it is stored (style.md §4).

One comment, one check; each failure is a ProtocolViolation naming the reason and the peer.
"""

from __future__ import annotations

from collections.abc import Collection

from phalanx.errors import ProtocolViolation, Reject
from phalanx.protocol.identity import recover_signer
from phalanx.protocol.messages import Kind, Signed, compute_digest, compute_msg_id
from phalanx.protocol.round import RoundView


def require(cond: bool, reason: Reject, peer: str, detail: str = "") -> None:
    """Raise ProtocolViolation(reason, peer) unless ``cond``."""
    if not cond:
        raise ProtocolViolation(reason, peer, detail)


def verify_message(msg: Signed, view: RoundView, me: str, *, kinds: Collection[Kind],
                   senders: Collection[str], seen: Collection[bytes]) -> None:
    """Admit ``msg`` for peer ``me`` in this round, or raise naming why and whom."""
    h = msg.header
    # Verify the message belongs to this task and round (a replay from another is refused)
    same = h.task.lower() == view.task.lower() and h.round == view.round
    require(same, Reject.REPLAYED, h.sender,
            f"task {h.task} round {h.round}, expected {view.task} round {view.round}")
    # Verify it is addressed to this peer
    require(h.receiver == me, Reject.WRONG_RECEIVER, h.sender, f"addressed to {h.receiver}")
    # Verify the claimed sender signed exactly this header and body
    require(recover_signer(compute_digest(h, msg.body), msg.signature) == h.sender,
            Reject.BAD_SIGNATURE, h.sender)
    # Verify the id is this message's (so a retry is recognized as the same message)
    require(h.msg_id == compute_msg_id(h.task, h.round, h.kind, h.sender, h.receiver, msg.body),
            Reject.MALFORMED, h.sender, "message id does not match its content")
    # Verify the sender holds a role that sends this kind of message this round
    require(h.sender in senders, Reject.NOT_SELECTED, h.sender,
            f"{h.kind.name} from a peer not elected to send it")
    # Verify the kind is expected in the current phase
    require(h.kind in kinds, Reject.WRONG_PHASE, h.sender, f"{h.kind.name} not expected now")
    # Verify the message was not admitted before
    require(h.msg_id not in seen, Reject.DUPLICATE, h.sender)
