"""The round's public coins, from data fixed before them (protocol.md §3.2, v1.1).

coin1 (the projection rows and the check coefficients of part-1 values) is a hash of the
session (task and round), the beacon, and every client's root — the hash of its list of
commitments, posted on chain before the commitment deadline. coin2 (every check coefficient)
adds each client's part-2 root. Anyone can recompute both once the roots are fixed; none of it
is secret. The last client to commit can still compute coin1 for candidate commitments of its
own (grinding): hence at least 64 projection rows (2^-64 per try) and one encoding per upload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from phalanx.errors import ConfigError


def compute_root(commitments: Sequence[bytes]) -> bytes:
    """The root a client posts for one part: SHA-256 over its commitments in server order
    (then the public blob's), each 32 bytes."""
    if any(len(c) != 32 for c in commitments):
        raise ConfigError("every commitment must be 32 bytes")
    h = hashlib.sha256(b"phalanx/root/v1" + len(commitments).to_bytes(2, "big"))
    for c in commitments:
        h.update(c)
    return h.digest()


def compute_coin(session: bytes, beacon: bytes, part: int,
                 roots: Iterable[tuple[int, bytes]], previous: bytes = b"") -> bytes:
    """coin``part`` from the session, beacon, the previous coin and the (client, root) pairs
    of every client bound for this part (order-independent: sorted by client)."""
    h = hashlib.sha256(b"phalanx/coin/v1")
    for item in (session, beacon, previous):
        h.update(len(item).to_bytes(4, "big") + item)
    h.update(bytes([part]))
    for client, root in sorted(roots):
        if len(root) != 32:
            raise ConfigError(f"root of client {client} has {len(root)} bytes, expected 32")
        h.update(client.to_bytes(8, "big") + root)
    return h.digest()
