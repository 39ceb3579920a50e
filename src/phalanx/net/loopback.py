"""The in-process transport: N endpoints of one :class:`LoopbackHub`, no sockets, no threads.

Semantics are the gRPC transport's (``grpc_transport.py``): the receiver's size limit, dedupe
by message id and ``admit`` run before a message is queued, refusals are counted by reason, and
the payload bytes counted are exactly those gRPC counts (payload only, once per message). A send
runs the receiver's admission synchronously in the sender's thread, so a simulation stays
deterministic; the payload is copied, as a wire would, so a sender may reuse its buffer.
"""

from __future__ import annotations

import threading

from phalanx.errors import ConfigError
from phalanx.net.transport import (
    DEFAULT_MAX_PAYLOAD,
    Admit,
    Delivery,
    FrameReject,
    Inbox,
    TransportError,
    TransportStats,
    check_msg_id,
    check_timeout,
)


class LoopbackHub:
    """A registry of in-process endpoints by address (``"loop:3"``)."""

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._lock = threading.Lock()
        self._endpoints: dict[str, LoopbackTransport] = {}

    def endpoint(self, address: str, *, admit: Admit | None = None,
                 max_payload: int | None = None) -> LoopbackTransport:
        """A new endpoint at ``address``; ConfigError if the address is taken."""
        limit = self.max_payload if max_payload is None else max_payload
        with self._lock:
            if address in self._endpoints:
                raise ConfigError(f"loopback address {address!r} is already in use")
            ep = LoopbackTransport(self, address, admit, limit)
            self._endpoints[address] = ep
            return ep

    def get_endpoint(self, address: str) -> LoopbackTransport | None:
        """The open endpoint at ``address``, if any."""
        with self._lock:
            return self._endpoints.get(address)

    def remove(self, ep: LoopbackTransport) -> None:
        """Forget a closed endpoint (its address becomes unreachable, then reusable)."""
        with self._lock:
            if self._endpoints.get(ep.address) is ep:
                del self._endpoints[ep.address]


class LoopbackTransport:
    """One endpoint of a :class:`LoopbackHub`; a :class:`~phalanx.net.transport.Transport`."""

    def __init__(self, hub: LoopbackHub, address: str, admit: Admit | None,
                 max_payload: int) -> None:
        self.address = address
        self.stats = TransportStats()
        self.inbox = Inbox(self.stats, admit, max_payload)
        self._hub = hub
        self._lock = threading.Lock()
        self._closed = False

    def send(self, to: str, msg_id: bytes, payload: bytes | memoryview, *,
             timeout: float = 30.0) -> None:
        """Deliver to the endpoint ``to`` now; TransportError if it is unknown or closed, or
        refuses the payload as oversized. A refusal by its ``admit`` is the receiver's business
        (counted there) and not an error here, as over gRPC."""
        msg_id = check_msg_id(msg_id)
        check_timeout(timeout)
        if self._closed:
            raise TransportError(f"send from {self.address} to {to}: this endpoint is closed")
        dest = self._hub.get_endpoint(to)
        if dest is None:
            raise TransportError(f"send from {self.address} to {to}: no such endpoint")
        size = memoryview(payload).nbytes
        if size > dest.inbox.max_payload:
            dest.inbox.count_reject(FrameReject.OVERSIZED)
            raise TransportError(f"send from {self.address} to {to}: payload of {size} bytes "
                                 f"refused as oversized (limit {dest.inbox.max_payload})")
        if dest.inbox.is_admitted(msg_id):  # as over gRPC: answered from the header alone
            dest.inbox.count_duplicate()
        else:
            dest.inbox.offer(Delivery(self.address, msg_id, bytes(payload)))
        with self._lock:
            self.stats.bytes_sent[to] += size
            self.stats.messages_sent += 1

    def receive(self, timeout: float = 0.0) -> list[Delivery]:
        """Everything admitted since the last call, in arrival order; waits up to ``timeout``
        seconds for the first (another thread may be sending)."""
        return self.inbox.take(timeout)

    def close(self) -> None:
        """Leave the hub: later sends to this address fail; waiting receives return."""
        self._closed = True
        self._hub.remove(self)
        self.inbox.close()
