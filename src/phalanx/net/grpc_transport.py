"""The gRPC transport: generic handlers, byte payloads, no protoc step (architecture.md, ``net``).

Wire format (docs/network.md). Every message is a sequence of frames; the first frame is

    MAGIC "PHX1" (4) | msg_id (32) | payload length (8, big-endian) | sender length (2) |
    sender endpoint (UTF-8, <= 256 bytes) | the first payload bytes

and the payload follows in frames of at most :data:`CHUNK` bytes. A message that fits one frame
goes by the unary method ``/phalanx.net.Transport/Send``; a larger one by the client-streaming
``/phalanx.net.Transport/Stream``, whose frames gRPC's flow control paces: the client writes the
next frame only once the previous one is accepted, and the receiver reads one frame at a time.

The receiver checks the header first: a declared length over ``max_payload`` is refused before
any payload is read (RESOURCE_EXHAUSTED), an id it already admitted is answered at once (the
payload is skipped), and a claimed sender whose in-flight bytes would exceed its budget is told
to come back (UNAVAILABLE, which the sender retries). Malformed framing is INVALID_ARGUMENT.
Every refusal is counted by reason and the server keeps serving. Complete payloads go through
the shared :class:`~phalanx.net.transport.Inbox` (dedupe, ``admit``, queue).
"""

from __future__ import annotations

import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import grpc

from phalanx.errors import ConfigError
from phalanx.net.transport import (
    DEFAULT_MAX_PAYLOAD,
    Admit,
    Delivery,
    FrameReject,
    Inbox,
    Outcome,
    TransportError,
    TransportStats,
    check_msg_id,
    check_timeout,
)

SERVICE = "phalanx.net.Transport"
UNARY_METHOD = f"/{SERVICE}/Send"
STREAM_METHOD = f"/{SERVICE}/Stream"
FETCH_METHOD = f"/{SERVICE}/Fetch"  # server-streaming: a 32-byte content address -> chunks
MAGIC = b"PHX1"
_FIXED = struct.Struct(">4s32sQH")  # magic, msg_id, payload length, sender length
MAX_SENDER = 256  # bytes of a claimed sender endpoint ("host:port" fits easily)
CHUNK = 2**20  # 1 MiB of payload per frame: a quarter of gRPC's 4 MiB message default
MAX_FRAME = CHUNK + _FIXED.size + MAX_SENDER  # the largest frame a sender of ours writes
MAX_CALL_SECONDS = 600.0  # a receiver refuses calls without a deadline or with a longer one
MIN_RATE = 2**20  # bytes/s an attempt is granted on top of attempt_timeout (a slow WAN link)
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
ACK = {Outcome.ADMITTED: b"A", Outcome.DUPLICATE: b"D", Outcome.REJECTED: b"R",
       Outcome.DROPPED: b"X"}


class _Malformed(Exception):
    """Framing the receiver cannot accept (counted as malformed-frame)."""


@dataclass(frozen=True)
class TlsConfig:
    """Certificates of a peer (PEM files): its own certificate and key, used as the server's and
    as the client's (mutual TLS), and the CA bundle that signs the other peers'."""

    cert_file: Path | str
    key_file: Path | str
    ca_file: Path | str
    require_client_auth: bool = True  # mutual TLS: a receiver only talks to CA-signed peers
    server_name: str | None = None  # name to verify in a server's certificate, if not its host

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(certificate chain, private key, CA bundle) as bytes; ConfigError naming a bad file."""
        out = []
        for name in ("cert_file", "key_file", "ca_file"):
            path = Path(getattr(self, name))
            try:
                data = path.read_bytes()
            except OSError as e:
                raise ConfigError(f"tls {name}={str(path)!r} cannot be read: {e.strerror}") from e
            if b"-----BEGIN" not in data:
                raise ConfigError(f"tls {name}={str(path)!r} is not a PEM file")
            out.append(data)
        return out[0], out[1], out[2]


class Header(NamedTuple):
    """The first frame's header."""

    msg_id: bytes
    total: int
    sender: str
    size: int  # header bytes (the payload starts here in the first frame)


def make_header(msg_id: bytes, total: int, sender: str) -> bytes:
    """The header of a message's first frame."""
    name = sender.encode()
    if len(name) > MAX_SENDER:
        raise ConfigError(f"endpoint {sender!r:.80} is longer than {MAX_SENDER} bytes")
    return _FIXED.pack(MAGIC, msg_id, total, len(name)) + name


def parse_header(frame: bytes) -> Header:
    """The header of a first frame; _Malformed if it is not one of ours."""
    if len(frame) < _FIXED.size:
        raise _Malformed(f"first frame of {len(frame)} bytes is shorter than a header")
    magic, msg_id, total, n = _FIXED.unpack_from(frame)
    if magic != MAGIC or n > MAX_SENDER or len(frame) < _FIXED.size + n:
        raise _Malformed("bad magic or sender length")
    try:
        sender = frame[_FIXED.size:_FIXED.size + n].decode()
    except UnicodeDecodeError as e:
        raise _Malformed("sender is not UTF-8") from e
    return Header(msg_id, total, sender, _FIXED.size + n)


def iter_frames(header: bytes, payload: memoryview) -> Iterator[bytes]:
    """The frames of one message: header + first chunk, then one chunk per frame."""
    yield header + payload[:CHUNK]
    for at in range(CHUNK, len(payload), CHUNK):
        yield bytes(payload[at:at + CHUNK])


class _Budget:
    """In-flight payload bytes per claimed sender and in total, reserved from the header."""

    def __init__(self, per_sender: int, total: int) -> None:
        self.per_sender, self.total = per_sender, total
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()

    def reserve(self, sender: str, n: int) -> bool:
        with self._lock:
            if self._held[sender] + n > self.per_sender or self._held.total() + n > self.total:
                return False
            self._held[sender] += n
            return True

    def release(self, sender: str, n: int) -> None:
        with self._lock:
            self._held[sender] -= n
            if self._held[sender] <= 0:
                del self._held[sender]


def _split_host_port(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"listen={listen!r} must be host:port (port 0 lets the OS choose)")
    return host, int(port)


class GrpcTransport:
    """A gRPC endpoint: a server receiving on ``listen`` and channels to the peers it sends to.

    Implements :class:`~phalanx.net.transport.Transport`; ``send`` is safe from several threads.
    ``address`` is the bound ``host:port`` (or ``advertise``: the endpoint other peers dial).
    """

    def __init__(self, listen: str = "127.0.0.1:0", *, admit: Admit | None = None,
                 max_payload: int = DEFAULT_MAX_PAYLOAD, tls: TlsConfig | None = None,
                 advertise: str | None = None, max_workers: int = 16,
                 max_inflight_per_sender: int | None = None, max_inflight: int | None = None,
                 attempt_timeout: float = 10.0, max_attempts: int = 8,
                 backoff: float = 0.05, max_backoff: float = 1.0,
                 serve: Callable[[bytes], bytes | None] | None = None) -> None:
        host, _ = _split_host_port(listen)
        #: answers Fetch: the bytes this endpoint holds at a 32-byte address, or None
        self._serve = serve
        self.stats = TransportStats()
        self.inbox = Inbox(self.stats, admit, max_payload)
        per_sender = max_payload if max_inflight_per_sender is None else max_inflight_per_sender
        self._budget = _Budget(per_sender, 4 * max_payload if max_inflight is None
                               else max_inflight)
        self._attempt_timeout = check_timeout(attempt_timeout)
        if max_attempts < 1:
            raise ConfigError(f"max_attempts={max_attempts} must be >= 1")
        self._max_attempts, self._backoff, self._max_backoff = max_attempts, backoff, max_backoff
        self._tls = tls.read() if tls is not None else None
        self._client_auth = tls.require_client_auth if tls is not None else False
        self._server_name = tls.server_name if tls is not None else None
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="phalanx-grpc")
        self._server = grpc.server(self._executor, handlers=[self._handler()], options=[
            ("grpc.so_reuseport", 0),  # a second server must not silently share the port
            ("grpc.max_receive_message_length", 4 * 2**20),
        ])
        port = self._bind(listen)
        self.address = advertise if advertise is not None else f"{host}:{port}"
        self._server.start()

    def _bind(self, listen: str) -> int:
        try:
            if self._tls is None:
                port = self._server.add_insecure_port(listen)
            else:
                cert, key, ca = self._tls
                creds = grpc.ssl_server_credentials(
                    [(key, cert)], root_certificates=ca, require_client_auth=self._client_auth)
                port = self._server.add_secure_port(listen, creds)
        except RuntimeError as e:
            self._executor.shutdown(wait=False)
            raise TransportError(f"cannot listen on {listen}: {e}") from e
        if port == 0:
            self._executor.shutdown(wait=False)
            raise TransportError(f"cannot listen on {listen}: the address is not available")
        return int(port)

    def _handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Send": grpc.unary_unary_rpc_method_handler(
                lambda frame, ctx: self._on_frames(iter((frame,)), ctx)),
            "Stream": grpc.stream_unary_rpc_method_handler(self._on_frames),
            "Fetch": grpc.unary_stream_rpc_method_handler(self._on_fetch),
        })

    def _on_fetch(self, key: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        """Serve the blob at ``key`` in CHUNK-sized frames (NOT_FOUND when not held)."""
        if len(key) != 32 or self._serve is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "fetch needs a 32-byte address")
        blob = self._serve(bytes(key)) if self._serve is not None else None
        if blob is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no blob {bytes(key).hex()[:16]}")
            return
        view = memoryview(blob)
        yield bytes(view[:0]) if not view else bytes(view[:CHUNK])
        for i in range(CHUNK, len(view), CHUNK):
            yield bytes(view[i:i + CHUNK])

    def fetch(self, to: str, key: bytes, *, timeout: float = 30.0,
              max_bytes: int | None = None) -> bytes | None:
        """The bytes endpoint ``to`` serves at ``key`` (None: it holds none, or is unreachable
        within ``timeout``). The caller checks them against ``key`` (content addressing)."""
        limit = self.inbox.max_payload if max_bytes is None else max_bytes
        try:
            call = self._channel(to).unary_stream(FETCH_METHOD)
            parts, got = [], 0
            for frame in call(check_msg_id(key), timeout=check_timeout(timeout)):
                got += len(frame)
                if got > limit:
                    return None
                parts.append(frame)
        except (grpc.RpcError, TransportError, ValueError):
            return None
        return b"".join(parts)

    # -- receiving ---------------------------------------------------------------------------

    def _on_frames(self, frames: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        """One incoming message, frame by frame; aborts the call with a status on refusal."""
        left = context.time_remaining()
        if left is None or left > MAX_CALL_SECONDS:
            self._refuse(context, FrameReject.NO_DEADLINE, grpc.StatusCode.INVALID_ARGUMENT,
                         f"calls need a deadline of at most {MAX_CALL_SECONDS:.0f} s")
        try:
            first = next(frames, None)
            if first is None:
                raise _Malformed("no frames")
            header = parse_header(first)
            if len(header.msg_id) != 32 or len(first) > MAX_FRAME:
                raise _Malformed("bad msg_id or oversized frame")
        except _Malformed as e:
            self._refuse(context, FrameReject.MALFORMED, grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if header.total > self.inbox.max_payload:
            self._refuse(context, FrameReject.OVERSIZED, grpc.StatusCode.RESOURCE_EXHAUSTED,
                         f"oversized: payload of {header.total} bytes exceeds the limit "
                         f"{self.inbox.max_payload}")
        if self.inbox.is_admitted(header.msg_id):
            self.inbox.count_duplicate()
            return ACK[Outcome.DUPLICATE]
        if not self._budget.reserve(header.sender, header.total):
            self._refuse(context, FrameReject.BUSY, grpc.StatusCode.UNAVAILABLE,
                         f"busy: in-flight bytes of {header.sender} at capacity, retry")
        try:
            payload = self._read_payload(first, header, frames)
        except _Malformed as e:
            self._refuse(context, FrameReject.MALFORMED, grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except grpc.RpcError:  # the sender gave up (deadline, cancel) mid-stream
            return b""
        finally:
            self._budget.release(header.sender, header.total)
        return ACK[self.inbox.offer(Delivery(header.sender, header.msg_id, payload))]

    @staticmethod
    def _read_payload(first: bytes, header: Header, frames: Iterator[bytes]) -> bytes:
        parts: list[bytes | memoryview] = [memoryview(first)[header.size:]]
        got = len(parts[0])
        for frame in frames:
            got += len(frame)
            if len(frame) > MAX_FRAME or got > header.total:
                raise _Malformed(f"frames carry more than the declared {header.total} bytes")
            parts.append(frame)
        if got != header.total:
            raise _Malformed(f"frames carry {got} of the declared {header.total} bytes")
        return b"".join(parts)

    def _refuse(self, context: grpc.ServicerContext, reason: FrameReject,
                code: grpc.StatusCode, details: str) -> NoReturn:
        self.inbox.count_reject(reason)
        context.abort(code, details)  # raises
        raise RuntimeError("grpc ServicerContext.abort returned")  # pragma: no cover

    def receive(self, timeout: float = 0.0) -> list[Delivery]:
        """Everything admitted since the last call, in arrival order; waits up to ``timeout``
        seconds for the first."""
        return self.inbox.take(timeout)

    # -- sending -----------------------------------------------------------------------------

    def _channel(self, to: str) -> grpc.Channel:
        with self._lock:
            if self._closed:
                raise TransportError(f"send from {self.address} to {to}: this endpoint is closed")
            ch = self._channels.get(to)
            if ch is None:
                ch = self._channels[to] = self._open_channel(to)
            return ch

    def _open_channel(self, to: str) -> grpc.Channel:
        options: list[tuple[str, Any]] = [
            ("grpc.initial_reconnect_backoff_ms", 100),  # our own retries pace reconnects
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        if self._tls is None:
            return grpc.insecure_channel(to, options=options)
        cert, key, ca = self._tls
        if self._server_name:
            options.append(("grpc.ssl_target_name_override", self._server_name))
        creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                             certificate_chain=cert)
        return grpc.secure_channel(to, creds, options=options)

    def send(self, to: str, msg_id: bytes, payload: bytes | memoryview, *,
             timeout: float = 30.0) -> None:
        """Deliver ``payload`` to the endpoint ``to`` within ``timeout`` seconds.

        Each attempt has a deadline (``attempt_timeout`` plus ``len / MIN_RATE``, within what is
        left of ``timeout``); UNAVAILABLE and DEADLINE_EXCEEDED are retried with exponential
        backoff, safely since the receiver drops ids it already admitted. TransportError, naming
        the peer and the cause, when attempts or time run out, or on any other status.
        """
        msg_id = check_msg_id(msg_id)
        end = time.monotonic() + check_timeout(timeout)
        view = memoryview(payload).cast("B")
        header = make_header(msg_id, len(view), self.address)
        per_attempt = self._attempt_timeout + len(view) / MIN_RATE
        channel = self._channel(to)
        for attempt in range(1, self._max_attempts + 1):
            left = end - time.monotonic()
            try:
                self._attempt(channel, header, view, min(left, per_attempt))
            except grpc.RpcError as e:
                code, details = e.code(), e.details()
                wait = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
                if (code not in RETRYABLE or attempt == self._max_attempts
                        or time.monotonic() + wait >= end):
                    raise TransportError(
                        f"send from {self.address} to {to} failed after {attempt} "
                        f"attempt(s): {code.name}: {details}") from e
                time.sleep(wait)
                continue
            except ValueError as e:  # grpc: "Cannot invoke RPC on closed channel!"
                raise TransportError(f"send from {self.address} to {to}: this endpoint was "
                                     f"closed during the send") from e
            with self._lock:
                self.stats.bytes_sent[to] += len(view)
                self.stats.messages_sent += 1
            return

    @staticmethod
    def _attempt(channel: grpc.Channel, header: bytes, view: memoryview, deadline: float) -> None:
        if len(view) <= CHUNK:
            call = channel.unary_unary(UNARY_METHOD)
            call(header + view, timeout=deadline)
        else:
            stream = channel.stream_unary(STREAM_METHOD)
            stream(iter_frames(header, view), timeout=deadline)

    def send_frames(self, to: str, frames: Iterable[bytes], *, timeout: float | None = 5.0,
                    stream: bool = True) -> bytes:
        """Raw frames to ``to`` in one call, no retries (tests and fault injection only)."""
        channel = self._channel(to)
        if stream:
            return bytes(channel.stream_unary(STREAM_METHOD)(iter(frames), timeout=timeout))
        (frame,) = frames
        return bytes(channel.unary_unary(UNARY_METHOD)(frame, timeout=timeout))

    def close(self) -> None:
        """Stop the server (its port is free afterwards), close the channels, end the threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            channels, self._channels = list(self._channels.values()), {}
        self.inbox.close()
        self._server.stop(grace=0.2).wait(5)
        for ch in channels:
            ch.close()
        self._executor.shutdown(wait=True, cancel_futures=True)
