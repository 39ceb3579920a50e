"""The transport interface: how a peer's bytes reach another peer (architecture.md, ``net``).

A :class:`Transport` moves opaque payloads between endpoints. It knows nothing of the protocol:
the protocol signs every message and checks the signature in the receiver's ``admit`` callback,
which the transport calls *before* a message is queued. The receiving side (size limit, dedupe
by message id, admission, queueing, counting) is one implementation, :class:`Inbox`, shared by the
in-process transport (``loopback.py``) and the gRPC one (``grpc_transport.py``), so both behave
and count alike.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from phalanx.errors import ConfigError, PhalanxError, ProtocolViolation, Reject

MSG_ID_BYTES = 32  # a message id is 32 bytes chosen by the sender (random or a content hash)
DEFAULT_MAX_PAYLOAD = 64 * 2**20  # 64 MiB: 8x a 10^6-coordinate bundle (7.6 MB), well under RAM


class TransportError(PhalanxError):
    """A message could not be delivered; the message names the peer and the cause."""


class FrameReject(Enum):
    """Why the transport itself refused a message (before ``admit`` saw it)."""

    OVERSIZED = "oversized"  # declared or actual payload length > max_payload
    MALFORMED = "malformed-frame"  # bad header, bad msg_id, length mismatch, bad frame order
    BUSY = "busy"  # the sender's in-flight byte budget at this receiver is used up
    NO_DEADLINE = "no-deadline"  # a call without a (bounded) deadline


class Outcome(Enum):
    """What a receiver did with one complete message."""

    ADMITTED = "admitted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    DROPPED = "dropped"  # the endpoint closed while the message waited for a copy's verdict


@dataclass(frozen=True, slots=True)
class Delivery:
    """One admitted message as the receiver sees it."""

    sender: str  # the sender's endpoint as it claims it (the protocol's signature authenticates it)
    msg_id: bytes  # 32 bytes chosen by the sender; a receiver drops a msg_id it already admitted
    payload: bytes


#: Called before a message is queued; a returned Reject (or a raised ProtocolViolation) refuses it.
Admit = Callable[[Delivery], Reject | None]


@dataclass
class TransportStats:
    """Traffic counters of one endpoint (style.md §6: rounds and bytes are counted and reported).

    Bytes are payload bytes (no headers or framing), counted once per message: ``bytes_sent`` when
    a send succeeds, ``bytes_received`` for every complete payload read, whatever became of it.
    """

    bytes_sent: Counter[str] = field(default_factory=Counter)  # keyed by peer endpoint
    bytes_received: Counter[str] = field(default_factory=Counter)  # keyed by claimed sender
    messages_sent: int = 0
    messages_received: int = 0  # admitted messages
    duplicates_dropped: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # Reject / FrameReject value -> count


class Transport(Protocol):
    """What the protocol layer needs from a network."""

    address: str  # this endpoint ("loop:3" in process, "127.0.0.1:50051" over gRPC)
    stats: TransportStats

    def send(self, to: str, msg_id: bytes, payload: bytes | memoryview, *,
             timeout: float = 30.0) -> None:
        """Deliver or raise TransportError after bounded retries with backoff (safe: ids dedupe)."""
        ...

    def receive(self, timeout: float = 0.0) -> list[Delivery]:
        """Everything admitted since the last call, in arrival order; waits up to timeout for
        the first."""
        ...

    def close(self) -> None:
        """Stop receiving and release every thread, socket and port."""
        ...


def check_msg_id(msg_id: bytes) -> bytes:
    """The id as bytes; ConfigError unless it has 32 bytes (a sender-side programming error)."""
    if not isinstance(msg_id, bytes | bytearray) or len(msg_id) != MSG_ID_BYTES:
        raise ConfigError(f"msg_id must be {MSG_ID_BYTES} bytes, got {msg_id!r:.80}")
    return bytes(msg_id)


def check_timeout(timeout: float) -> float:
    """A send timeout: finite and > 0 (every call has a deadline)."""
    if not (timeout > 0 and timeout < float("inf")):
        raise ConfigError(f"timeout={timeout} must be a finite number of seconds > 0")
    return float(timeout)


class Inbox:
    """The receiving half of an endpoint: limit, dedupe, admit, queue, count. Thread-safe.

    Dedupe consumes an id only when its message is admitted, so a forged message that ``admit``
    refuses cannot burn the id of the genuine one; a second copy arriving while the first is
    still being admitted waits for that verdict instead of racing it.
    """

    def __init__(self, stats: TransportStats, admit: Admit | None, max_payload: int) -> None:
        if not (isinstance(max_payload, int) and max_payload > 0):
            raise ConfigError(f"max_payload={max_payload} must be a positive integer")
        self.stats = stats
        self.max_payload = max_payload
        self._admit = admit
        self._cond = threading.Condition()
        self._queue: deque[Delivery] = deque()
        self._seen: set[bytes] = set()
        self._pending: set[bytes] = set()
        self._closed = False

    def count_reject(self, reason: Reject | FrameReject) -> None:
        """Count a refusal decided outside :meth:`offer` (e.g. a malformed frame)."""
        with self._cond:
            self.stats.rejected[reason.value] += 1

    def is_admitted(self, msg_id: bytes) -> bool:
        """True when a message with this id was already admitted (senders may skip the payload)."""
        with self._cond:
            return msg_id in self._seen

    def count_duplicate(self) -> None:
        """Count a duplicate dropped before its payload was read."""
        with self._cond:
            self.stats.duplicates_dropped += 1

    def offer(self, delivery: Delivery) -> Outcome:
        """Run one complete message through the size limit, dedupe and ``admit``; queue it if
        admitted. Returns what happened (refusals are counted by reason)."""
        size = len(delivery.payload)
        with self._cond:
            self.stats.bytes_received[delivery.sender] += size
            if size > self.max_payload:
                self.stats.rejected[FrameReject.OVERSIZED.value] += 1
                return Outcome.REJECTED
            while delivery.msg_id in self._pending and not self._closed:
                self._cond.wait()
            if delivery.msg_id in self._pending:
                return Outcome.DROPPED
            if delivery.msg_id in self._seen:
                self.stats.duplicates_dropped += 1
                return Outcome.DUPLICATE
            self._pending.add(delivery.msg_id)
        try:
            verdict = self._admit(delivery) if self._admit is not None else None
        except ProtocolViolation as e:
            verdict = e.reason
        except BaseException:
            with self._cond:
                self._pending.discard(delivery.msg_id)
                self._cond.notify_all()
            raise
        return self._settle(delivery, verdict)

    def _settle(self, delivery: Delivery, verdict: Reject | None) -> Outcome:
        with self._cond:
            self._pending.discard(delivery.msg_id)
            self._cond.notify_all()
            if verdict is not None:
                self.stats.rejected[verdict.value] += 1
                return Outcome.REJECTED
            self._seen.add(delivery.msg_id)
            self.stats.messages_received += 1
            if not self._closed:
                self._queue.append(delivery)
            return Outcome.ADMITTED

    def take(self, timeout: float) -> list[Delivery]:
        """Everything queued, in arrival order; waits up to ``timeout`` seconds for the first."""
        end = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not self._queue and not self._closed:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            out = list(self._queue)
            self._queue.clear()
            return out

    def close(self) -> None:
        """Wake any waiting ``take``; later messages are still counted but never queued."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
