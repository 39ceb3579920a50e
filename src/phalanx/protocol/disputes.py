"""The bodies of ``DISPUTE`` and ``REVEAL`` messages (protocol.md §3.4). Parsed exactly.

DISPUTE (member j → the client's proposer and every other member): "my share of client c is
what its committed bundle gives (or: that bundle does not open); reveal it" — client (2 B) ‖
j (1 B). A member disputes only its own seat: revealing another seat's envelope would hand
the corrupt members a share they do not hold (t + 1 shares open an honest client's input).
REVEAL (proposer → every member): for each disputed seat j, both parts' commitment lists
(bound by the roots on chain), j's sealed bundles and their ephemeral secrets —
count (1 B) ‖ per seat: j (1 B) ‖ per part 1, 2: n (2 B) ‖ n × 32 B commitments ‖
len (8 B) ‖ sealed ‖ ephemeral (32 B).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from phalanx.errors import ProtocolViolation, Reject


@dataclass(frozen=True, slots=True)
class RevealedPart:
    """One part of one disputed envelope, as the proposer re-sends it."""

    commitments: tuple[bytes, ...]
    sealed: bytes
    ephemeral: bytes


def encode_dispute(client: int, seat: int) -> bytes:
    return struct.pack(">HB", client, seat)


def decode_dispute(body: bytes, sender: str) -> tuple[int, int]:
    """(client, seat); ProtocolViolation(MALFORMED) unless exactly 3 bytes."""
    if len(body) != 3:
        raise ProtocolViolation(Reject.MALFORMED, sender, "dispute does not parse exactly")
    client, seat = struct.unpack(">HB", body)
    return client, seat


def encode_reveal(parts: dict[int, tuple[RevealedPart, RevealedPart]]) -> bytes:
    out = [bytes([len(parts)])]
    for j, pair in sorted(parts.items()):
        out.append(bytes([j]))
        for p in pair:
            out.append(struct.pack(">H", len(p.commitments)) + b"".join(p.commitments)
                       + struct.pack(">Q", len(p.sealed)) + p.sealed + p.ephemeral)
    return b"".join(out)


def decode_reveal(body: bytes, sender: str) -> dict[int, tuple[RevealedPart, RevealedPart]]:
    """Parse exactly; ProtocolViolation(MALFORMED) otherwise."""
    try:
        pos, out = 1, {}
        for _ in range(body[0]):
            j = body[pos]
            pos += 1
            pair = []
            for _part in (1, 2):
                (n,) = struct.unpack_from(">H", body, pos)
                commitments = tuple(body[pos + 2 + 32 * k:pos + 2 + 32 * (k + 1)]
                                    for k in range(n))
                pos += 2 + 32 * n
                (ns,) = struct.unpack_from(">Q", body, pos)
                sealed = body[pos + 8:pos + 8 + ns]
                eph = body[pos + 8 + ns:pos + 8 + ns + 32]
                if len(sealed) != ns or len(eph) != 32 or any(len(c) != 32
                                                              for c in commitments):
                    raise ValueError("short item")
                pos += 8 + ns + 32
                pair.append(RevealedPart(commitments, sealed, eph))
            if j in out:
                raise ValueError("seat repeated")
            out[j] = (pair[0], pair[1])
    except (IndexError, struct.error, ValueError) as e:
        raise ProtocolViolation(Reject.MALFORMED, sender, f"reveal: {e}") from e
    if pos != len(body):
        raise ProtocolViolation(Reject.MALFORMED, sender, "reveal has trailing bytes")
    return out
