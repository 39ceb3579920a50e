"""Transport throughput (docs/network.md, "Measured"): a 7.6 MB payload (a 10^6-coordinate
bundle) sent and received over the in-process transport, loopback gRPC and loopback gRPC with
mutual TLS, side by side in one run (the variants alternate, so machine noise hits all), median
of --repeats; then small-message latency, and bytes on the wire against payload bytes, counted
by a TCP relay between two gRPC endpoints (sender -> receiver direction, and the replies).

Usage: PYTHONPATH=src .venv/bin/python benchmarks/transport.py [--repeats 7] [--mb 7.6]
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from phalanx.net.grpc_transport import GrpcTransport, TlsConfig
from phalanx.net.loopback import LoopbackHub
from phalanx.net.transport import Transport

_counter = iter(range(1, 1 << 62))


def next_id() -> bytes:
    return next(_counter).to_bytes(32, "big")


def one_trip(a: Transport, b: Transport, payload: bytes | memoryview) -> float:
    """Seconds from send to the receiver holding the payload."""
    t0 = time.perf_counter()
    a.send(b.address, next_id(), payload)
    (d,) = b.receive(timeout=30)
    dt = time.perf_counter() - t0
    if len(d.payload) != len(payload):
        raise SystemExit("payload truncated")
    return dt


def make_pki(d: Path) -> tuple[TlsConfig, TlsConfig]:
    """A throwaway CA and two peer certificates for 127.0.0.1."""
    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("ca")).issuer_name(name("ca"))
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out = []
    for peer in ("a", "b"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(peer)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        (d / f"{peer}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / f"{peer}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        out.append(TlsConfig(d / f"{peer}.pem", d / f"{peer}.key", d / "ca.pem"))
    return out[0], out[1]


class Relay:
    """A TCP relay on 127.0.0.1 that forwards to ``target`` and counts bytes each way."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.up = self.down = 0  # client -> server, server -> client
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._socks: list[socket.socket] = [self._listener]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._socks += [client, server]
            for src, dst, up in ((client, server, True), (server, client, False)):
                t = threading.Thread(target=self._pump, args=(src, dst, up), daemon=True)
                self._threads.append(t)
                t.start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        while True:
            try:
                data = src.recv(1 << 16)
                if not data:
                    break
                dst.sendall(data)
            except OSError:
                break
            with self._lock:
                if up:
                    self.up += len(data)
                else:
                    self.down += len(data)
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        for s in self._socks:
            s.close()
        for t in self._threads:
            t.join(2)


def wire_bytes(payload: bytes) -> list[tuple[str, int, int, int]]:
    """(case, payload bytes, bytes sender -> receiver, bytes back) through a counting relay."""
    a, b = GrpcTransport(), GrpcTransport()
    relay = Relay(b.address)
    rows = []
    try:
        for case, p in (("first 7.6 MB (with connection setup)", payload),
                        ("next 7.6 MB (warm connection)", payload),
                        ("1 KiB message (warm)", payload[:1024])):
            up0, down0 = relay.up, relay.down
            a.send(relay.address, next_id(), p)
            b.receive(timeout=30)
            time.sleep(0.2)  # let the relay count the reply's trailing frames
            rows.append((case, len(p), relay.up - up0, relay.down - down0))
    finally:
        a.close()
        b.close()
        relay.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--mb", type=float, default=7.6)
    ap.add_argument("--small", type=int, default=200, help="1 KiB messages for the latency row")
    args = ap.parse_args()
    payload = os.urandom(int(args.mb * 1e6))
    with tempfile.TemporaryDirectory() as tmp:
        tls_a, tls_b = make_pki(Path(tmp))
        hub = LoopbackHub()
        pairs: dict[str, tuple[Transport, Transport]] = {
            "in-process (loopback)": (hub.endpoint("loop:0"), hub.endpoint("loop:1")),
            "in-process, memoryview (copied)": (hub.endpoint("loop:2"), hub.endpoint("loop:3")),
            "gRPC, 127.0.0.1": (GrpcTransport(), GrpcTransport()),
            "gRPC + mutual TLS, 127.0.0.1": (GrpcTransport(tls=tls_a), GrpcTransport(tls=tls_b)),
        }
        try:
            times: dict[str, list[float]] = {k: [] for k in pairs}
            for a, b in pairs.values():  # warm up: connections, TLS handshakes
                one_trip(a, b, payload)
            view = memoryview(bytearray(payload))  # a sender's reusable buffer: copied
            for _ in range(args.repeats):
                for k, (a, b) in pairs.items():
                    times[k].append(one_trip(a, b, view if "memoryview" in k else payload))
            small: dict[str, float] = {}
            for k, (a, b) in pairs.items():
                small[k] = median_small(a, b, payload[:1024], args.small)
        finally:
            for a, b in pairs.values():
                a.close()
                b.close()
    print(f"payload {len(payload)} bytes, median of {args.repeats} (send until received)")
    print(f"{'transport':32} {'ms':>8} {'MB/s':>8} {'1 KiB msg, us':>14}")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"{k:32} {med * 1e3:8.2f} {len(payload) / med / 1e6:8.0f} {small[k] * 1e6:14.0f}")
    print("\nbytes on the wire (gRPC, no TLS), counted by a TCP relay")
    print(f"{'case':40} {'payload':>10} {'to receiver':>12} {'overhead':>9} {'back':>7}")
    for case, n, up, down in wire_bytes(payload):
        print(f"{case:40} {n:10} {up:12} {100 * (up - n) / n:8.2f}% {down:7}")


def median_small(a: Transport, b: Transport, msg: bytes, n: int) -> float:
    """Median seconds per 1 KiB message, sent one at a time and received."""
    return statistics.median(one_trip(a, b, msg) for _ in range(n))


if __name__ == "__main__":
    main()
