"""Models and updates as content-addressed blobs (architecture.md, data flow: "only hashes go
on chain"). A model is its float32 little-endian bytes; its address is their SHA-256.

Whoever fetches a blob checks it against the address it asked for (``decode_model``), so a
peer serving other bytes is refused, never trusted.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ProtocolViolation, Reject


def encode_model(params: NDArray[np.floating]) -> bytes:
    """The one byte form of a model: float32, little-endian."""
    return np.ascontiguousarray(params, dtype="<f4").tobytes()


def hash_model(params: NDArray[np.floating]) -> bytes:
    """The content address of a model or update (what the chain records)."""
    return hashlib.sha256(encode_model(params)).digest()


def decode_model(raw: bytes, address: bytes, sender: str = "?") -> NDArray[np.float32]:
    """The model at ``address``; ProtocolViolation(HASH_MISMATCH) when ``raw`` is not it."""
    if hashlib.sha256(raw).digest() != address or len(raw) % 4:
        raise ProtocolViolation(Reject.HASH_MISMATCH, sender,
                                f"blob is not the model {address.hex()[:16]}")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)
