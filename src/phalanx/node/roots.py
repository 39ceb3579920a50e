"""Part-2 roots between peers, signed, until the contract stores them (protocol.md §3.2).

``protocol.peer`` emits ``PostResponse(root)``; the simulator's driver holds those roots for
the members (``sim.peers``) because the contract has no slot for them yet. A real peer sends
its root to every member of the round as a node-level announcement:

    "PXR2" | task (20) | round (8) | sender (20) | root (32) | secp256k1 signature (65)

signed over SHA-256("phalanx/root2/v1" ‖ task ‖ round ‖ sender ‖ root). A member keeps the
first root a proposer of the round announced; a second, different one is refused and counted
(an equivocating proposer can at most make members disagree on coin2, i.e. abort the round,
which is what the chain slot will remove).
"""

from __future__ import annotations

import hashlib
import struct

from eth_utils.address import to_checksum_address

from phalanx.errors import ProtocolViolation, Reject
from phalanx.protocol.identity import SIGNATURE_BYTES, Identity, recover_signer

MAGIC = b"PXR2"
_BODY = struct.Struct(">4s20sQ20s32s")
SIZE = _BODY.size + SIGNATURE_BYTES


def _digest(task: bytes, rnd: int, sender: bytes, root: bytes) -> bytes:
    return hashlib.sha256(b"phalanx/root2/v1" + task + rnd.to_bytes(8, "big") + sender
                          + root).digest()


def encode_root2(me: Identity, task: str, rnd: int, root: bytes) -> bytes:
    t, s = bytes.fromhex(task[2:]), bytes.fromhex(me.address[2:])
    return _BODY.pack(MAGIC, t, rnd, s, root) + me.sign(_digest(t, rnd, s, root))


def decode_root2(raw: bytes, claimed: str = "?") -> tuple[str, int, str, bytes]:
    """(task, round, sender, root) of a correctly signed announcement; ProtocolViolation
    (MALFORMED / BAD_SIGNATURE) otherwise."""
    if len(raw) != SIZE:
        raise ProtocolViolation(Reject.MALFORMED, claimed, f"root announcement of {len(raw)} B")
    magic, task, rnd, sender, root = _BODY.unpack_from(raw)
    if magic != MAGIC:
        raise ProtocolViolation(Reject.MALFORMED, claimed, "bad root announcement magic")
    who = str(to_checksum_address(sender))
    if recover_signer(_digest(task, rnd, sender, root), raw[_BODY.size:]) != who:
        raise ProtocolViolation(Reject.BAD_SIGNATURE, who, "root announcement not signed by it")
    return str(to_checksum_address(task)), rnd, who, root


def is_root2(raw: bytes) -> bool:
    return raw[:4] == MAGIC
