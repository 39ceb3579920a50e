"""Signed protocol messages bound to (task, round, sender, receiver, kind) and their one wire
form (protocol.md §2; issue 9: "every protocol message is signed and bound").

A message is a :class:`Header` and an opaque body (the kind's own encoding). The sender signs
digest = SHA-256(domain ‖ header ‖ SHA-256(body)) with its secp256k1 key, so a receiver can
check who sent it, that it was meant for this task, round and receiver, and nothing else.
The encoding is canonical: one byte string per message, and a decoder that consumes exactly
it (trailing or missing bytes are MALFORMED). It lives here, not in ``net.codec``, because the
signature covers it and ``protocol`` may not import ``net`` (the same reason ``mpc.messages``
holds the bundle codec).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import Enum

from eth_utils.address import to_checksum_address

from phalanx.errors import ProtocolViolation, Reject
from phalanx.protocol.identity import SIGNATURE_BYTES, Identity

DOMAIN = b"phalanx/msg/v1"
MAGIC = b"PXM1"
_HEAD = struct.Struct(">4s20sQB32s20s20sI")
"""magic, task (contract address), round, kind, msg id, sender, receiver, body length."""
MAX_BODY = 1 << 31


class Kind(Enum):
    """What a message carries (one code per kind; the body's codec is the kind's)."""

    UPLOAD = 1  # proposer → member: a part's commitments and the member's sealed bundle
    PRZS_KEY = 2  # member → member: a sealed PRZS key
    OPENING = 3  # member → member: shares of an opening
    DISPUTE = 4  # member → proposer and members: it disputes its own share of a client
    REVEAL = 5  # proposer → members: the disputed member's envelope and its ephemeral
    BLOB = 6  # proposer → member: a public masked blob
    EVIDENCE = 7  # member → members: another party's signed OPENING, DISPUTE or REVEAL
    FINISHED = 8  # member → members: done with the final opening; the openings it marked
    ZERO_DEAL = 9  # member → member: its dealt zero sharings' commitments and sealed payload
    ZERO_REVEAL = 10  # member → members: after a failed check, the payloads it was dealt


@dataclass(frozen=True, slots=True)
class Header:
    """Who sends what to whom, for which task and round."""

    task: str
    round: int
    kind: Kind
    msg_id: bytes
    sender: str
    receiver: str


@dataclass(frozen=True, slots=True)
class Signed:
    """A header, a body and the sender's signature over both."""

    header: Header
    body: bytes
    signature: bytes


def _addr(a: str) -> bytes:
    raw = bytes.fromhex(a[2:] if a.startswith("0x") else a)
    if len(raw) != 20:
        raise ValueError(f"address {a!r} is not 20 bytes")
    return raw


def _checksum(raw: bytes) -> str:
    return str(to_checksum_address(raw))


def compute_msg_id(task: str, rnd: int, kind: Kind, sender: str, receiver: str,
                   body: bytes) -> bytes:
    """A message's id: the same message sent twice (a retry) has the same id."""
    return hashlib.sha256(b"phalanx/msg-id" + _addr(task) + rnd.to_bytes(8, "big")
                          + bytes([kind.value]) + _addr(sender) + _addr(receiver)
                          + hashlib.sha256(body).digest()).digest()


def _head_bytes(h: Header, body_len: int) -> bytes:
    return _HEAD.pack(MAGIC, _addr(h.task), h.round, h.kind.value, h.msg_id, _addr(h.sender),
                      _addr(h.receiver), body_len)


def compute_digest(h: Header, body: bytes) -> bytes:
    """What the sender signs."""
    return hashlib.sha256(DOMAIN + _head_bytes(h, len(body))
                          + hashlib.sha256(body).digest()).digest()


def make_signed(identity: Identity, *, task: str, rnd: int, kind: Kind, receiver: str,
                body: bytes) -> Signed:
    """Sign ``body`` for ``receiver`` in this task and round."""
    h = Header(task, rnd, kind, compute_msg_id(task, rnd, kind, identity.address, receiver, body),
               identity.address, receiver)
    return Signed(h, body, identity.sign(compute_digest(h, body)))


def encode(msg: Signed) -> bytes:
    """The one wire form: header ‖ body ‖ signature."""
    return _head_bytes(msg.header, len(msg.body)) + msg.body + msg.signature


def decode(raw: bytes | memoryview, sender: str = "?") -> Signed:
    """Parse :func:`encode`'s output exactly; ProtocolViolation(MALFORMED) otherwise."""
    raw = bytes(raw)
    if len(raw) < _HEAD.size + SIGNATURE_BYTES:
        raise ProtocolViolation(Reject.MALFORMED, sender, f"message of {len(raw)} bytes")
    magic, task, rnd, kind, msg_id, snd, rcv, n = _HEAD.unpack_from(raw)
    if magic != MAGIC:
        raise ProtocolViolation(Reject.MALFORMED, sender, "bad magic")
    if len(raw) != _HEAD.size + n + SIGNATURE_BYTES:
        raise ProtocolViolation(Reject.MALFORMED, sender,
                                f"{len(raw)} bytes, the header says {_HEAD.size + n + 65}")
    try:
        k = Kind(kind)
    except ValueError as e:
        raise ProtocolViolation(Reject.MALFORMED, sender, f"unknown kind {kind}") from e
    h = Header(_checksum(task), rnd, k, msg_id, _checksum(snd), _checksum(rcv))
    return Signed(h, raw[_HEAD.size:_HEAD.size + n], raw[_HEAD.size + n:])


def encode_many(msgs: list[Signed]) -> bytes:
    """Several signed messages in one body: count (2 B) ‖ per message: length (4 B) ‖ its
    :func:`encode`."""
    out = [len(msgs).to_bytes(2, "big")]
    for m in msgs:
        raw = encode(m)
        out += [len(raw).to_bytes(4, "big"), raw]
    return b"".join(out)


def decode_many(body: bytes, sender: str, limit: int) -> list[Signed]:
    """Parse :func:`encode_many`'s output exactly (at most ``limit`` messages)."""
    if len(body) < 2:
        raise ProtocolViolation(Reject.MALFORMED, sender, f"message list of {len(body)} bytes")
    count, pos, out = int.from_bytes(body[:2], "big"), 2, []
    if count > limit:
        raise ProtocolViolation(Reject.MALFORMED, sender, f"{count} messages, at most {limit}")
    for _ in range(count):
        n = int.from_bytes(body[pos:pos + 4], "big")
        if pos + 4 + n > len(body):
            raise ProtocolViolation(Reject.MALFORMED, sender, "message list is short")
        out.append(decode(body[pos + 4:pos + 4 + n], sender))
        pos += 4 + n
    if pos != len(body):
        raise ProtocolViolation(Reject.MALFORMED, sender, "message list has trailing bytes")
    return out
