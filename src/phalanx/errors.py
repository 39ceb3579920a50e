"""The root of Phalanx's exceptions and the reasons an input or message is rejected.

This module is layer 0: it imports nothing from the project, so every layer (``mpc`` included)
may raise these errors without breaking the import rules of ``architecture.md``.
"""

from __future__ import annotations

import math
from enum import Enum
from numbers import Real


class Reject(Enum):
    """Why a client's input, a server's share or a message was refused (protocol.md §3.2, §3.4)."""

    # Plaintext validity of a prepared update
    NON_FINITE = "non-finite"
    WRONG_LENGTH = "wrong-length"
    NORM_BOUND = "norm-bound"
    NORM_RANGE = "norm-range"
    SIGN_DOMAIN = "sign-domain"
    # Secure checks (protocol.md §3.2)
    PROJECTION = "projection"
    NOT_BINARY = "not-binary"
    RANGE_PROOF = "range-proof"
    TRUST_WEIGHT = "trust-weight"
    REMAINDER = "remainder"
    INCONSISTENT_SHARING = "inconsistent-sharing"
    BAD_BUNDLE = "bad-bundle"
    # Round and message admission
    MISSED_DEADLINE = "missed-deadline"
    WRONG_PHASE = "wrong-phase"
    NOT_IN_COMMITTEE = "not-in-committee"
    NOT_SELECTED = "not-selected"
    DUPLICATE = "duplicate"
    BAD_SIGNATURE = "bad-signature"
    HASH_MISMATCH = "hash-mismatch"
    WRONG_RECEIVER = "wrong-receiver"
    REPLAYED = "replayed"
    MALFORMED = "malformed"
    # Servers
    SERVER_CHEATED = "server-cheated"
    SERVER_DROPPED = "server-dropped"
    # Secure checks added later (last, so that the ledger's reason codes of the others stay)
    TRUST_BIT = "trust-bit"  # fltrust's revealed bit is not [w > 0]


class PhalanxError(Exception):
    """Root of every error Phalanx raises on purpose."""


class ConfigError(PhalanxError, ValueError):
    """A parameter has a bad value; the message names the parameter and the value."""


class ProtocolViolation(PhalanxError):
    """A peer broke the protocol; carries the reason and the peer to blame."""

    def __init__(self, reason: Reject, peer: int | str, detail: str = "") -> None:
        self.reason = reason
        self.peer = peer
        self.detail = detail
        extra = f": {detail}" if detail else ""
        super().__init__(f"peer {peer} rejected ({reason.value}){extra}")


class ReconstructionError(PhalanxError):
    """Shares could not be decoded to a unique value (too few, or too many errors)."""


class AggregationError(PhalanxError):
    """An aggregation could not produce a result (e.g. a committee abort)."""


class ChainError(PhalanxError):
    """A ledger call failed or reverted; the cause is chained."""


class DataError(PhalanxError):
    """A dataset is missing or corrupt; the message says where to put which files."""


def require_positive(name: str, value: float) -> None:
    """A parameter that must be a finite real number > 0; else ConfigError naming it."""
    if not (isinstance(value, Real) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}={value} must be a finite number > 0")

