"""The gRPC transport over loopback (net/grpc_transport.py): framing, limits, retries, TLS."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from phalanx.errors import ConfigError, Reject
from phalanx.net.grpc_transport import (
    CHUNK,
    MAX_FRAME,
    GrpcTransport,
    TlsConfig,
    iter_frames,
    make_header,
)
from phalanx.net.loopback import LoopbackHub
from phalanx.net.transport import Delivery, Transport, TransportError

pytestmark = pytest.mark.timeout(60)
BUNDLE_BYTES = 7_600_000  # a 10^6-coordinate bundle
Factory = Callable[..., GrpcTransport]


def mid(i: int) -> bytes:
    return i.to_bytes(32, "big")


@pytest.fixture
def make() -> Iterator[Factory]:
    """GrpcTransports on 127.0.0.1:0, every one closed at the end of the test."""
    made: list[GrpcTransport] = []

    def factory(**kw: object) -> GrpcTransport:
        t = GrpcTransport(**kw)  # type: ignore[arg-type]  # keyword pass-through for tests
        made.append(t)
        return t

    yield factory
    for t in made:
        t.close()


def code_of(e: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return e.value.code()  # type: ignore[no-any-return]  # grpc is untyped


def test_delivery_order_and_byte_counts_match_the_loopback_transport(make: Factory) -> None:
    # Prepare
    a, b = make(), make()
    hub = LoopbackHub()
    la, lb = hub.endpoint(a.address), hub.endpoint(b.address)
    payloads = [bytes([i]) * (i * 1000 + 1) for i in range(5)] + [b"\x07" * (CHUNK + 5)]
    # Execute
    for t in (a, la):
        for i, p in enumerate(payloads):
            t.send(b.address, mid(i), p)
    got = b.receive(timeout=5)
    # Assert
    assert [d.payload for d in got] == payloads
    assert {d.sender for d in got} == {a.address}
    assert a.stats == la.stats and b.stats == lb.stats
    assert a.stats.bytes_sent[b.address] == sum(map(len, payloads))


def test_a_bundle_streams_in_chunks_intact(make: Factory) -> None:
    # Prepare
    a, b = make(), make()
    payload = np.random.default_rng(2).bytes(BUNDLE_BYTES)
    frames = list(iter_frames(make_header(mid(1), BUNDLE_BYTES, a.address), memoryview(payload)))
    # Execute
    a.send(b.address, mid(1), payload)
    (d,) = b.receive(timeout=5)
    # Assert
    assert d.payload == payload
    assert len(frames) == -(-BUNDLE_BYTES // CHUNK) and max(map(len, frames)) <= MAX_FRAME


def test_one_frame_over_grpcs_message_limit_is_refused_so_chunks_are_needed(
        make: Factory) -> None:
    a, b = make(), make()
    frame = make_header(mid(1), 5 * 2**20, a.address) + bytes(5 * 2**20)
    with pytest.raises(grpc.RpcError) as e:
        a.send_frames(b.address, [frame], stream=False)
    assert code_of(e) is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_duplicates_are_dropped_counted_and_their_payload_skipped(make: Factory) -> None:
    # Prepare
    a, b = make(), make()
    a.send(b.address, mid(1), b"once")
    a.send(b.address, mid(1), b"once")  # a retry after a lost reply
    big = bytes(3 * CHUNK)
    a.send(b.address, mid(2), big)
    a.send(b.address, mid(2), big)  # a streamed retry: answered after its first frame
    # Execute: the header of an admitted id, then no payload: answered without reading it
    ack = a.send_frames(b.address, [make_header(mid(1), 10 * CHUNK, a.address)])
    # Assert
    assert [d.payload for d in b.receive(timeout=5)] == [b"once", big]
    assert ack == b"D" and b.stats.duplicates_dropped == 3
    assert b.stats.bytes_received[a.address] == 4 + len(big)  # no copy's payload was read
    assert a.stats.messages_sent == 4


def test_admit_refusal_is_counted_and_not_delivered(make: Factory) -> None:
    def admit(d: Delivery) -> Reject | None:
        return None if d.payload.startswith(b"signed") else Reject.BAD_SIGNATURE

    a, b = make(), make(admit=admit)
    a.send(b.address, mid(1), b"unsigned")
    a.send(b.address, mid(2), b"signed")
    assert [d.payload for d in b.receive(timeout=5)] == [b"signed"]
    assert b.stats.rejected == {"bad-signature": 1}


def test_oversized_is_refused_before_the_payload_is_read_and_the_server_keeps_serving(
        make: Factory) -> None:
    # Prepare
    a, b = make(), make(max_payload=4 * CHUNK)
    yielded = 0

    def endless() -> Iterator[bytes]:
        nonlocal yielded
        yield make_header(mid(9), 10**12, a.address)
        while True:
            yielded += 1
            yield bytes(CHUNK)

    # Execute
    with pytest.raises(TransportError, match=rf"to {b.address}.*RESOURCE_EXHAUSTED: oversized"):
        a.send(b.address, mid(1), bytes(4 * CHUNK + 1))
    with pytest.raises(grpc.RpcError) as e:
        a.send_frames(b.address, endless(), timeout=10)
    a.send(b.address, mid(2), b"still serving")
    # Assert
    assert code_of(e) is grpc.StatusCode.RESOURCE_EXHAUSTED and yielded < 16
    assert [d.payload for d in b.receive(timeout=5)] == [b"still serving"]
    assert b.stats.rejected == {"oversized": 2} and b.stats.bytes_received[a.address] == 13


@pytest.mark.parametrize("frames", [
    [b"garbage"],
    [b"XXXX" + bytes(60)],
    [],
    [make_header(mid(1), 10, "p") + b"12345"],  # short
    [make_header(mid(1), 10, "p") + b"12345", b"123456"],  # long
    [make_header(mid(1), 10, "p") + bytes(10), b"x"],  # trailing frame
    [make_header(mid(1), MAX_FRAME + 1, "p"), bytes(MAX_FRAME + 1)],  # frame over the limit
])
def test_malformed_framing_is_refused_counted_and_the_server_keeps_serving(
        make: Factory, frames: list[bytes]) -> None:
    a, b = make(), make()
    with pytest.raises(grpc.RpcError) as e:
        a.send_frames(b.address, frames)
    a.send(b.address, mid(2), b"ok")
    assert code_of(e) is grpc.StatusCode.INVALID_ARGUMENT
    assert b.stats.rejected == {"malformed-frame": 1}
    assert [d.payload for d in b.receive(timeout=5)] == [b"ok"]


def test_calls_without_a_deadline_are_refused(make: Factory) -> None:
    a, b = make(), make()
    with pytest.raises(grpc.RpcError) as e:
        a.send_frames(b.address, [make_header(mid(1), 2, "p") + b"hi"], timeout=None)
    assert code_of(e) is grpc.StatusCode.INVALID_ARGUMENT and "deadline" in e.value.details()
    assert b.stats.rejected == {"no-deadline": 1} and b.receive() == []


def test_a_sender_over_its_in_flight_budget_is_told_to_retry(make: Factory) -> None:
    # Prepare: one stream holds the claimed sender's whole budget, mid-payload
    a, b = make(), make(max_payload=2 * CHUNK, max_inflight_per_sender=2 * CHUNK)
    release = threading.Event()

    def held() -> Iterator[bytes]:
        yield make_header(mid(1), 2 * CHUNK, a.address) + bytes(CHUNK)
        release.wait(10)
        yield bytes(CHUNK)

    stream = a._channel(b.address).stream_unary("/phalanx.net.Transport/Stream")
    first = stream.future(held(), timeout=20)
    # Execute
    t0 = time.monotonic()
    while not b._budget._held and time.monotonic() - t0 < 10:
        time.sleep(0.01)
    with pytest.raises(grpc.RpcError) as e:
        a.send_frames(b.address, [make_header(mid(2), 10, a.address) + bytes(10)], stream=False)
    release.set()
    first.result(timeout=10)
    a.send(b.address, mid(3), bytes(10))
    # Assert
    assert code_of(e) is grpc.StatusCode.UNAVAILABLE and b.stats.rejected == {"busy": 1}
    assert [d.msg_id for d in b.receive(timeout=5)] == [mid(1), mid(3)]


def test_a_stalled_receiver_yields_transport_error_within_the_timeout(make: Factory) -> None:
    # Prepare: a socket that listens but never speaks HTTP/2
    a = make(attempt_timeout=0.3)
    with socket.socket() as stall:
        stall.bind(("127.0.0.1", 0))
        stall.listen(8)
        to = f"127.0.0.1:{stall.getsockname()[1]}"
        # Execute
        t0 = time.monotonic()
        with pytest.raises(TransportError, match=rf"to {to} failed after [2-9] attempt"):
            a.send(to, mid(1), b"x", timeout=1.5)
        took = time.monotonic() - t0
    # Assert
    assert 0.5 < took < 3.0
    assert a.stats.messages_sent == 0


def test_a_receiver_that_comes_up_late_gets_the_message(make: Factory) -> None:
    # Prepare: a free port, nobody listening yet
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    a = make(max_attempts=1)
    with pytest.raises(TransportError, match="UNAVAILABLE"):
        a.send(f"127.0.0.1:{port}", mid(1), b"early")
    a2 = make(max_attempts=20)
    errors: list[Exception] = []

    def send() -> None:
        try:
            a2.send(f"127.0.0.1:{port}", mid(1), b"early", timeout=20)
        except Exception as e:  # reported by the assertion below
            errors.append(e)

    t = threading.Thread(target=send)
    # Execute
    t.start()
    time.sleep(0.3)  # the sender's first attempts meet a closed port
    b = make(listen=f"127.0.0.1:{port}")
    t.join(20)
    # Assert
    assert errors == [] and [d.payload for d in b.receive(timeout=5)] == [b"early"]


def test_concurrent_senders_and_threads_deliver_every_message_once(make: Factory) -> None:
    # Prepare
    b = make()
    senders = [make() for _ in range(3)]
    big = bytes(range(256)) * (3 * CHUNK // 256)

    def burst(s: GrpcTransport, base: int) -> None:
        for k in range(10):
            s.send(b.address, mid(base + k), big if k == 5 else f"{base + k}".encode())

    threads = [threading.Thread(target=burst, args=(s, 1000 * i + 100 * j))
               for i, s in enumerate(senders) for j in range(2)]
    # Execute
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    got = b.receive(timeout=5)
    # Assert
    assert len(got) == 60 and len({d.msg_id for d in got}) == 60
    assert sum(d.payload == big for d in got) == 6
    assert sum(s.stats.messages_sent for s in senders) == 60


def test_close_frees_the_port_and_ends_the_threads() -> None:
    # Prepare
    before = set(threading.enumerate())
    a, b = GrpcTransport(), GrpcTransport()
    a.send(b.address, mid(1), bytes(2 * CHUNK))
    assert len(b.receive(timeout=5)) == 1
    port = int(b.address.rsplit(":", 1)[1])
    # Execute
    a.close()
    b.close()
    # Assert
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))  # fails while a server listens there
        s.listen(1)
    t0 = time.monotonic()
    while set(threading.enumerate()) - before and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(TransportError, match="closed"):
        a.send(b.address, mid(2), b"x")
    assert b.receive(timeout=1) == []


def test_close_during_a_send_ends_it_with_transport_error() -> None:
    # Prepare: a send stuck on a receiver that never answers
    a = GrpcTransport(attempt_timeout=10)
    errors: list[Exception] = []
    with socket.socket() as stall:
        stall.bind(("127.0.0.1", 0))
        stall.listen(8)
        to = f"127.0.0.1:{stall.getsockname()[1]}"

        def send() -> None:
            try:
                a.send(to, mid(1), b"x", timeout=30)
            except Exception as e:  # reported by the assertion below
                errors.append(e)

        t = threading.Thread(target=send)
        t.start()
        time.sleep(0.3)  # the first attempt is in flight
        # Execute
        t0 = time.monotonic()
        a.close()
        t.join(10)
    # Assert
    assert time.monotonic() - t0 < 5 and not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], TransportError), errors
    assert to in str(errors[0])


def test_a_port_in_use_is_refused_not_shared(make: Factory) -> None:
    a = make()
    with pytest.raises(TransportError, match=rf"cannot listen on {a.address}"):
        make(listen=a.address)


def test_bad_configuration_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="listen='nowhere'"):
        GrpcTransport("nowhere")
    with pytest.raises(ConfigError, match="cert_file='.*missing.pem' cannot be read"):
        GrpcTransport(tls=TlsConfig(tmp_path / "missing.pem", tmp_path / "k", tmp_path / "c"))


# -- TLS ----------------------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_ca(dir: Path, tag: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(f"ca-{tag}"))
            .issuer_name(_name(f"ca-{tag}"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (dir / f"ca-{tag}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _write_peer(dir: Path, name: str, ca_key: ec.EllipticCurvePrivateKey,
                ca: x509.Certificate, ca_file: Path) -> TlsConfig:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (dir / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (dir / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return TlsConfig(dir / f"{name}.pem", dir / f"{name}.key", ca_file)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TlsConfig]:
    """Two peers of one CA; a peer of another CA; a peer of ours that trusts only the other CA."""
    d = tmp_path_factory.mktemp("pki")
    key, ca = _write_ca(d, "good")
    bad_key, bad_ca = _write_ca(d, "bad")
    return {
        "a": _write_peer(d, "a", key, ca, d / "ca-good.pem"),
        "b": _write_peer(d, "b", key, ca, d / "ca-good.pem"),
        "outsider": _write_peer(d, "outsider", bad_key, bad_ca, d / "ca-good.pem"),
        "wrong_ca": _write_peer(d, "wrong_ca", key, ca, d / "ca-bad.pem"),
    }


def test_tls_round_trip(make: Factory, pki: dict[str, TlsConfig]) -> None:
    a, b = make(tls=pki["a"]), make(tls=pki["b"])
    payload = bytes(2 * CHUNK + 3)
    a.send(b.address, mid(1), payload)
    a.send(b.address, mid(2), b"small")
    assert [d.payload for d in b.receive(timeout=5)] == [payload, b"small"]


@pytest.mark.parametrize("client", ["wrong_ca", "outsider"])
def test_tls_refuses_an_untrusted_server_or_client(make: Factory, pki: dict[str, TlsConfig],
                                                    client: str) -> None:
    # wrong_ca does not trust b's certificate; b does not trust outsider's
    b = make(tls=pki["b"])
    c = make(tls=pki[client], max_attempts=2)
    with pytest.raises(TransportError, match=rf"to {b.address} failed.*UNAVAILABLE"):
        c.send(b.address, mid(1), b"hello", timeout=3)
    assert b.receive() == []


def test_a_plaintext_client_cannot_talk_to_a_tls_server(make: Factory,
                                                        pki: dict[str, TlsConfig]) -> None:
    b = make(tls=pki["b"])
    c = make(max_attempts=2)
    with pytest.raises(TransportError, match="UNAVAILABLE"):
        c.send(b.address, mid(1), b"hello", timeout=3)


def test_the_grpc_transport_is_a_transport(make: Factory) -> None:
    t: Transport = make()
    assert t.address.startswith("127.0.0.1:") and t.stats.messages_sent == 0
