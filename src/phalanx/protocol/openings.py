"""The body of an ``OPENING`` message: one member's shares of one kind of opening, for every
client it covers (protocol.md §3.1). Parsed exactly.

Body: kind code (1 B) ‖ count (4 B) ‖ per item: client (4 B, 0xFFFFFFFF for round-level
values), length (4 B), length × 8-byte field elements (each < p).
"""

from __future__ import annotations

import struct

import numpy as np

from phalanx.errors import ProtocolViolation, Reject
from phalanx.mpc.field import FieldVec, P
from phalanx.mpc.messages import OpeningKind

ROUND = 0xFFFFFFFF
"""The client field of a round-level value (the final aggregate and weight sum)."""
_KINDS = list(OpeningKind)


def encode_opening(kind: OpeningKind, items: dict[int, FieldVec]) -> bytes:
    out = [struct.pack(">BI", _KINDS.index(kind), len(items))]
    for client, vec in sorted(items.items()):
        v = np.ascontiguousarray(vec, dtype=">u8")
        out.append(struct.pack(">II", client, v.shape[0]) + v.tobytes())
    return b"".join(out)


def decode_opening(body: bytes, sender: str) -> tuple[OpeningKind, dict[int, FieldVec]]:
    """Parse exactly; every element a canonical field element; ProtocolViolation otherwise."""
    try:
        code, count = struct.unpack_from(">BI", body)
        kind = _KINDS[code]
        pos, items = 5, {}
        for _ in range(count):
            client, n = struct.unpack_from(">II", body, pos)
            raw = body[pos + 8:pos + 8 + 8 * n]
            if len(raw) != 8 * n or client in items:
                raise ValueError("short or repeated item")
            vec = np.frombuffer(raw, dtype=">u8").astype(np.uint64)
            if (vec >= np.uint64(P)).any():
                raise ValueError("element not below p")
            items[client] = vec
            pos += 8 + 8 * n
    except (struct.error, IndexError, ValueError) as e:
        raise ProtocolViolation(Reject.MALFORMED, sender, f"opening: {e}") from e
    if pos != len(body):
        raise ProtocolViolation(Reject.MALFORMED, sender, "opening has trailing bytes")
    return kind, items
