"""A peer's content-addressed blob store on disk, and hash-checked fetches from other peers
(architecture.md, data flow: "models and updates move by hash").

A blob lives at ``DIR/<sha256 hex>``; it is written to a temporary file, fsynced and renamed
into place, so a crash leaves either no blob or the whole one. Reading checks the hash again
(a corrupted file is dropped, never served). :func:`fetch_model` asks peers in turn and keeps
the first answer that hashes to the address asked for; a peer that serves other bytes is
named in the log and skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ProtocolViolation
from phalanx.protocol.models import decode_model

log = logging.getLogger("phalanx.node")


class Fetcher(Protocol):
    def fetch(self, to: str, key: bytes, *, timeout: float = 30.0,
              max_bytes: int | None = None) -> bytes | None: ...


class BlobStore:
    """``put`` / ``get`` by SHA-256 address under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, address: bytes) -> Path:
        if len(address) != 32:
            raise ValueError(f"a blob address is 32 bytes, got {len(address)}")
        return self.root / address.hex()

    def put(self, address: bytes, raw: bytes) -> None:
        """Store ``raw`` at ``address`` (refused unless it hashes to it); atomic."""
        if hashlib.sha256(raw).digest() != address:
            raise ValueError(f"blob does not hash to {address.hex()[:16]}")
        dest = self.path(address)
        if dest.exists():
            return
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)

    def get(self, address: bytes) -> bytes | None:
        """The bytes at ``address`` (hash-checked), or None."""
        try:
            raw = self.path(address).read_bytes()
        except (FileNotFoundError, ValueError):
            return None
        if hashlib.sha256(raw).digest() != address:
            log.warning("blob %s on disk is corrupt: removed", address.hex()[:16])
            self.path(address).unlink(missing_ok=True)
            return None
        return raw

    def __contains__(self, address: bytes) -> bool:
        return self.get(address) is not None


def fetch_model(store: BlobStore, address: bytes, net: Fetcher | None,
                endpoints: Iterable[str], *, timeout: float = 30.0) -> NDArray[np.float32] | None:
    """The model at ``address``: from disk, else from the first peer that serves it (checked
    and then stored). None when nobody serves it."""
    raw = store.get(address)
    if raw is not None:
        return decode_model(raw, address)
    if net is None:
        return None
    for endpoint in endpoints:
        got = net.fetch(endpoint, address, timeout=timeout)
        if got is None:
            continue
        try:
            params = decode_model(got, address, endpoint)
        except ProtocolViolation:
            log.warning("peer %s served bytes that are not blob %s: refused", endpoint,
                        address.hex()[:16])
            continue
        store.put(address, got)
        return params
    return None
