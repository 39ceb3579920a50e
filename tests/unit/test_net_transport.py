"""The transport interface and its in-process implementation (net/transport.py, net/loopback.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from phalanx.errors import ConfigError, ProtocolViolation, Reject
from phalanx.net.loopback import LoopbackHub
from phalanx.net.transport import (
    Delivery,
    FrameReject,
    Inbox,
    Transport,
    TransportError,
    TransportStats,
)

BUNDLE_BYTES = 7_600_000  # a 10^6-coordinate bundle


def mid(i: int) -> bytes:
    return i.to_bytes(32, "big")


def test_delivery_in_order_with_exact_byte_counts() -> None:
    # Prepare
    hub = LoopbackHub()
    a: Transport = hub.endpoint("loop:0")
    b: Transport = hub.endpoint("loop:1")
    # Execute
    for i in range(5):
        a.send("loop:1", mid(i), bytes([i]) * (i + 1))
    got = b.receive()
    # Assert
    assert [d.payload for d in got] == [bytes([i]) * (i + 1) for i in range(5)]
    assert all(d.sender == "loop:0" for d in got)
    assert [d.msg_id for d in got] == [mid(i) for i in range(5)]
    assert a.stats.bytes_sent == {"loop:1": 15} and a.stats.messages_sent == 5
    assert b.stats.bytes_received == {"loop:0": 15} and b.stats.messages_received == 5
    assert b.receive() == []


def test_bundle_sized_payload_arrives_intact_and_sender_may_reuse_its_buffer() -> None:
    # Prepare
    hub = LoopbackHub()
    a, b = hub.endpoint("loop:0"), hub.endpoint("loop:1")
    buf = bytearray(np.random.default_rng(1).bytes(BUNDLE_BYTES))
    want = bytes(buf)
    # Execute
    a.send("loop:1", mid(1), memoryview(buf))
    buf[:10] = b"\x00" * 10
    # Assert
    (d,) = b.receive()
    assert d.payload == want
    assert b.stats.bytes_received["loop:0"] == BUNDLE_BYTES


def test_duplicates_are_dropped_and_counted() -> None:
    hub = LoopbackHub()
    a, b = hub.endpoint("loop:0"), hub.endpoint("loop:1")
    a.send("loop:1", mid(7), b"x")
    a.send("loop:1", mid(7), b"x")  # a retry
    a.send("loop:1", mid(7), b"other")  # same id, other content
    assert [d.payload for d in b.receive()] == [b"x"]
    assert b.stats.duplicates_dropped == 2 and b.stats.messages_received == 1
    assert b.stats.bytes_received["loop:0"] == 1  # a known id's payload is not read (as gRPC)


def test_admit_refusal_is_counted_not_delivered_and_does_not_burn_the_id() -> None:
    # Prepare: the receiver admits only payloads that start with "ok" (a stand-in for signatures)
    def admit(d: Delivery) -> Reject | None:
        return None if d.payload.startswith(b"ok") else Reject.BAD_SIGNATURE

    hub = LoopbackHub()
    a, b = hub.endpoint("loop:0"), hub.endpoint("loop:1", admit=admit)
    # Execute: a forgery under the id of a genuine message, then the genuine one
    a.send("loop:1", mid(3), b"forged")
    a.send("loop:1", mid(3), b"ok genuine")
    # Assert
    assert [d.payload for d in b.receive()] == [b"ok genuine"]
    assert b.stats.rejected == {Reject.BAD_SIGNATURE.value: 1}
    assert b.stats.duplicates_dropped == 0


def test_admit_may_raise_protocol_violation_instead() -> None:
    def admit(d: Delivery) -> Reject | None:
        raise ProtocolViolation(Reject.WRONG_PHASE, d.sender)

    hub = LoopbackHub()
    a, b = hub.endpoint("loop:0"), hub.endpoint("loop:1", admit=admit)
    a.send("loop:1", mid(1), b"late")
    assert b.receive() == [] and b.stats.rejected == {"wrong-phase": 1}


def test_oversized_is_refused_with_a_reason_and_the_receiver_keeps_serving() -> None:
    hub = LoopbackHub()
    a, b = hub.endpoint("loop:0"), hub.endpoint("loop:1", max_payload=1000)
    with pytest.raises(TransportError, match=r"loop:1.*oversized"):
        a.send("loop:1", mid(1), b"x" * 1001)
    a.send("loop:1", mid(2), b"x" * 1000)
    assert [len(d.payload) for d in b.receive()] == [1000]
    assert b.stats.rejected == {FrameReject.OVERSIZED.value: 1}
    assert b.stats.bytes_received["loop:0"] == 1000  # the refused payload was never read
    assert a.stats.messages_sent == 1


def test_unknown_or_closed_destination_and_bad_arguments_are_errors() -> None:
    hub = LoopbackHub()
    a, b = hub.endpoint("loop:0"), hub.endpoint("loop:1")
    with pytest.raises(TransportError, match="loop:0 to loop:9: no such endpoint"):
        a.send("loop:9", mid(1), b"x")
    b.close()
    with pytest.raises(TransportError, match="loop:1"):
        a.send("loop:1", mid(1), b"x")
    with pytest.raises(ConfigError, match="msg_id"):
        a.send("loop:0", b"short", b"x")
    with pytest.raises(ConfigError, match="timeout"):
        a.send("loop:0", mid(1), b"x", timeout=0)
    with pytest.raises(ConfigError, match="already in use"):
        hub.endpoint("loop:0")
    a.close()
    with pytest.raises(TransportError, match="closed"):
        a.send("loop:0", mid(1), b"x")
    assert hub.endpoint("loop:1").address == "loop:1"  # a closed address is reusable


def test_receive_waits_for_the_first_message_and_is_bounded() -> None:
    # Prepare
    hub = LoopbackHub()
    a, b = hub.endpoint("loop:0"), hub.endpoint("loop:1")
    waiting = threading.Event()

    def late_send() -> None:
        waiting.wait(5)
        a.send("loop:1", mid(1), b"late")

    t = threading.Thread(target=late_send)
    # Execute
    t0 = time.monotonic()
    assert b.receive(timeout=0.05) == []
    empty_wait = time.monotonic() - t0
    t.start()
    waiting.set()
    got = b.receive(timeout=5)
    t.join(5)
    # Assert
    assert [d.payload for d in got] == [b"late"]
    assert 0.04 <= empty_wait < 1.0


def test_close_wakes_a_waiting_receive() -> None:
    hub = LoopbackHub()
    b = hub.endpoint("loop:1")
    out: list[list[Delivery]] = []
    t = threading.Thread(target=lambda: out.append(b.receive(timeout=10)))
    t.start()
    t0 = time.monotonic()
    b.close()
    t.join(5)
    assert out == [[]] and time.monotonic() - t0 < 5


def test_concurrent_senders_every_message_once() -> None:
    # Prepare
    hub = LoopbackHub()
    b = hub.endpoint("loop:99")
    senders = [hub.endpoint(f"loop:{i}") for i in range(4)]

    def burst(i: int) -> None:
        for k in range(50):
            senders[i].send("loop:99", mid(1000 * i + k), f"{i}/{k}".encode())
            senders[i].send("loop:99", mid(1000 * i + k), f"{i}/{k}".encode())  # retry

    # Execute
    threads = [threading.Thread(target=burst, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    got = b.receive()
    # Assert
    assert len(got) == 200 and len({d.msg_id for d in got}) == 200
    for i in range(4):  # each sender's messages keep their order
        mine = [d.payload for d in got if d.sender == f"loop:{i}"]
        assert mine == [f"{i}/{k}".encode() for k in range(50)]
    assert b.stats.duplicates_dropped == 200


def test_a_copy_arriving_during_admission_waits_for_the_verdict() -> None:
    # Prepare: admission of the first copy blocks until the second copy has arrived
    entered, release = threading.Event(), threading.Event()
    calls: list[bytes] = []

    def admit(d: Delivery) -> Reject | None:
        calls.append(d.payload)
        if d.payload == b"first":
            entered.set()
            release.wait(5)
        return None

    inbox = Inbox(TransportStats(), admit, 100)
    first = threading.Thread(target=inbox.offer, args=(Delivery("p", mid(1), b"first"),))
    first.start()
    entered.wait(5)
    second = threading.Thread(target=inbox.offer, args=(Delivery("p", mid(1), b"second"),))
    # Execute
    second.start()
    second.join(0.05)
    assert second.is_alive()  # it waits, not races
    release.set()
    first.join(5)
    second.join(5)
    # Assert
    assert [d.payload for d in inbox.take(0)] == [b"first"]
    assert calls == [b"first"] and inbox.stats.duplicates_dropped == 1
