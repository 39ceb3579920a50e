"""The secure backend of the compatible rules (fedavg-nb, cc, rsa, fltrust), protocol.md §3."""

from __future__ import annotations

from phalanx.rules.secure.backend import (
    ClientFault,
    Envelope,
    FramingEnvelope,
    SecureBackend,
    SecureParams,
    SecureResult,
    error_bound,
    make_circuit,
)

__all__ = [
    "ClientFault",
    "Envelope",
    "FramingEnvelope",
    "SecureBackend",
    "SecureParams",
    "SecureResult",
    "error_bound",
    "make_circuit",
]
