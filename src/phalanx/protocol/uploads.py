"""A proposer's upload of one part to one member: its commitments to every member's bundle
(and the public blob's), the member's sealed bundle, and the blob (protocol.md §2).

Body: part (1 B) ‖ n (2 B) ‖ n × 32-byte commitments ‖ len (8 B) ‖ sealed ‖ len (8 B) ‖ blob.
Decoding consumes the body exactly (one encoding per upload).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from phalanx.errors import ProtocolViolation, Reject


@dataclass(frozen=True, slots=True)
class Upload:
    """What a member receives from a proposer for one part."""

    part: int
    commitments: tuple[bytes, ...]
    sealed: bytes
    blob: bytes = b""


def encode_upload(u: Upload) -> bytes:
    return (struct.pack(">BH", u.part, len(u.commitments)) + b"".join(u.commitments)
            + struct.pack(">Q", len(u.sealed)) + u.sealed
            + struct.pack(">Q", len(u.blob)) + u.blob)


def decode_upload(body: bytes, sender: str) -> Upload:
    """Parse exactly; ProtocolViolation(MALFORMED) otherwise."""
    try:
        part, n = struct.unpack_from(">BH", body)
        pos = 3 + 32 * n
        commitments = tuple(body[3 + 32 * k:3 + 32 * (k + 1)] for k in range(n))
        (ns,) = struct.unpack_from(">Q", body, pos)
        sealed = body[pos + 8:pos + 8 + ns]
        pos += 8 + ns
        (nb,) = struct.unpack_from(">Q", body, pos)
        blob = body[pos + 8:pos + 8 + nb]
        end = pos + 8 + nb
    except struct.error as e:
        raise ProtocolViolation(Reject.MALFORMED, sender, f"upload: {e}") from e
    if end != len(body) or len(sealed) != ns or len(blob) != nb or part not in (1, 2):
        raise ProtocolViolation(Reject.MALFORMED, sender,
                                f"upload of {len(body)} bytes does not parse exactly")
    return Upload(part, commitments, sealed, blob)
