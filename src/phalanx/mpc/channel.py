"""The channel between committee members: an interface and an in-process implementation.

The committee engine only talks through :class:`Channel`; the network transport plugs in later.
:class:`LocalChannel` delivers in process (no sockets, no clocks) and counts what a real network
would carry: bytes sent and received per party, messages, and communication rounds (one round =
every party sends, then every party receives).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Protocol


def server_party(j: int) -> str:
    """The party name of server j."""
    return f"server:{j}"


def client_party(i: int) -> str:
    """The party name of client i."""
    return f"client:{i}"


class Channel(Protocol):
    """Point-to-point authenticated delivery of byte payloads."""

    def send(self, sender: str, receiver: str, payload: bytes | memoryview) -> None:
        """Queue ``payload`` from ``sender`` to ``receiver``."""

    def receive(self, receiver: str) -> list[tuple[str, bytes | memoryview]]:
        """Everything queued for ``receiver`` since its last receive, in send order."""

    def end_round(self) -> None:
        """Mark the end of one communication round."""


@dataclass(slots=True)
class LocalChannel:
    """In-process channel with byte, message and round counters."""

    bytes_sent: Counter[str] = field(default_factory=Counter)
    bytes_received: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    rounds: int = 0
    _boxes: defaultdict[str, list[tuple[str, bytes | memoryview]]] = field(
        default_factory=lambda: defaultdict(list))

    def send(self, sender: str, receiver: str, payload: bytes | memoryview) -> None:
        self.bytes_sent[sender] += len(payload)
        self.bytes_received[receiver] += len(payload)
        self.messages += 1
        self._boxes[receiver].append((sender, payload))

    def receive(self, receiver: str) -> list[tuple[str, bytes | memoryview]]:
        return self._boxes.pop(receiver, [])

    def end_round(self) -> None:
        self.rounds += 1
