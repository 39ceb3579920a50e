"""node/ pieces without a chain: peer.toml checks, the blob store, fetch by hash over gRPC,
the signed part-2 root announcement."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from phalanx.errors import ConfigError
from phalanx.net.grpc_transport import GrpcTransport
from phalanx.node.blobs import BlobStore, fetch_model
from phalanx.node.config import dump_peer_toml, load_peer_config
from phalanx.protocol.models import encode_model, hash_model

TASK = "0x" + "ab" * 20


def _write(tmp: Path, **over: object) -> Path:
    (tmp / "config.toml").write_text("peers = 4\n")
    values: dict[str, object] = {"keystore": "keystore", "listen": "127.0.0.1:5000",
                                 "run_dir": "run", "rpc_url": "http://127.0.0.1:8545",
                                 "contract": TASK, "task": "config.toml", "partition": 1}
    values.update(over)
    body = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in values.items()
                     if v is not None)
    (tmp / "peer.toml").write_text("[peer]\n" + body + "\n")
    return tmp / "peer.toml"


def test_a_valid_peer_toml_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    cfg = load_peer_config(_write(tmp_path))
    assert cfg.keystore == (tmp_path / "keystore").resolve()
    assert cfg.partition == 1 and cfg.endpoint == "127.0.0.1:5000"
    # the dump reads back the same
    (tmp_path / "again.toml").write_text(dump_peer_toml(cfg))
    assert load_peer_config(tmp_path / "again.toml") == cfg


@pytest.mark.parametrize(("over", "named"), [
    ({"listen": "localhost"}, "listen='localhost'"),
    ({"rpc_url": "ftp://x"}, "rpc_url='ftp://x'"),
    ({"contract": "0x1234"}, "contract='0x1234'"),
    ({"partition": -1}, "partition=-1"),
    ({"partition": None}, "exactly one of partition"),
    ({"task": "missing.toml"}, "missing.toml"),
    ({"poll": 0}, "poll=0"),
    ({"rpc_retries": 0}, "rpc_retries=0"),
    ({"colour": "red"}, "colour"),
])
def test_each_bad_value_is_one_error_naming_it(tmp_path: Path, over: dict[str, object],
                                               named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace("?", r"\?")):
        load_peer_config(_write(tmp_path, **over))


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_peer_config(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("[peer\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_peer_config(tmp_path / "bad.toml")


def test_the_blob_store_refuses_wrong_bytes_and_drops_a_corrupted_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    raw = b"model bytes"
    address = hashlib.sha256(raw).digest()
    with pytest.raises(ValueError, match="does not hash"):
        store.put(address, raw + b"!")
    store.put(address, raw)
    assert store.get(address) == raw
    store.path(address).write_bytes(b"tampered")
    assert store.get(address) is None and not store.path(address).exists()
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_fetch_by_hash_over_grpc_skips_a_peer_serving_other_bytes(tmp_path: Path) -> None:
    params = np.arange(300_000, dtype=np.float32)  # 1.2 MB: more than one chunk
    address = hash_model(params)
    liar = GrpcTransport(serve=lambda key: encode_model(params + 1))
    honest = GrpcTransport(serve=lambda key: encode_model(params) if key == address else None)
    me = GrpcTransport()
    try:
        store = BlobStore(tmp_path)
        assert me.fetch(honest.address, b"\x00" * 32) is None  # not held
        got = fetch_model(store, address, me, [liar.address, honest.address])
        assert got is not None and np.array_equal(got, params)
        assert store.get(address) == encode_model(params)  # stored after the check
        # the liar alone yields nothing
        assert fetch_model(BlobStore(tmp_path / "b"), address, me, [liar.address]) is None
    finally:
        for t in (liar, honest, me):
            t.close()


def _tls_toml(tmp: Path, section: str) -> Path:
    path = _write(tmp)
    path.write_text(path.read_text() + "\n[tls]\n" + section)
    return path


def test_a_tls_section_gives_the_peer_mutual_tls_and_bad_ones_are_named(tmp_path: Path) -> None:
    from phalanx.net.transport import TransportError
    from phalanx.node.pki import issue, make_authority

    # Prepare: a CA and two peers' certificates (node.pki, as `network up --tls` makes them)
    ca = make_authority(tmp_path / "pki")
    files = {name: issue(ca, tmp_path / name, name, ["127.0.0.1"]) for name in ("a", "b")}
    assert (tmp_path / "pki" / "ca.key").stat().st_mode & 0o777 == 0o600
    cfgs = {}
    for name, (cert, key) in files.items():
        d = tmp_path / f"cfg-{name}"
        d.mkdir()
        cfgs[name] = load_peer_config(_tls_toml(
            d, f'cert = "{cert}"\nkey = "{key}"\nca = "{ca.cert_file}"\n'))
    # the dump reads back the same, [tls] included
    (tmp_path / "again.toml").write_text(dump_peer_toml(cfgs["a"]))
    (tmp_path / "config.toml").write_text("peers = 4\n")
    assert load_peer_config(tmp_path / "again.toml").transport_tls() == cfgs["a"].transport_tls()
    # Execute / Assert: the two talk over TLS; a plaintext sender cannot reach them
    a, b = (GrpcTransport(tls=cfgs[n].transport_tls(), max_attempts=2) for n in ("a", "b"))
    plain = GrpcTransport(max_attempts=2)
    try:
        a.send(b.address, b"\x01" * 32, b"hello", timeout=5)
        assert [d.payload for d in b.receive(timeout=5)] == [b"hello"]
        with pytest.raises(TransportError, match="UNAVAILABLE"):
            plain.send(b.address, b"\x02" * 32, b"hello", timeout=3)
    finally:
        for t in (a, b, plain):
            t.close()
    # bad [tls] sections: one line naming the key
    for section, named in ((f'cert = "{files["a"][0]}"\n', "cert, key and ca together"),
                           ('cert = "x.pem"\nkey = "y"\nca = "z"\n', "tls_cert=.*x.pem"),
                           ('colour = "red"\n', r"unknown \[tls\] key")):
        with pytest.raises(ConfigError, match=named):
            load_peer_config(_tls_toml(tmp_path, section))


# -- a peer's own data (peer.toml [data] files = "mine.npz") ----------------------------------
def _own_task() -> object:
    from phalanx.sim.config import SimConfig

    return SimConfig(peers=6, rounds=1, secure=True, ledger="embedded", rule="fltrust",
                     attack="none", malicious=0.0, committee=4, threshold=1, voters=1,
                     model="logreg", local_epochs=1)


def test_own_files_are_what_the_peer_trains_and_votes_on(tmp_path: Path) -> None:
    from phalanx.node.work import NodeWork

    task = _own_task()
    rng = np.random.default_rng(5)
    x = rng.random((40, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, 40)
    np.savez(tmp_path / "mine.npz", x_train=x, y_train=y)
    own = NodeWork(task, 1, BlobStore(tmp_path / "a"), tmp_path / "mine.npz")  # type: ignore[arg-type]
    named = NodeWork(task, 1, BlobStore(tmp_path / "b"))  # type: ignore[arg-type]
    # its shard and validation split are its file's rows, every row exactly once
    rows = np.concatenate([own.shard[0].numpy(), own.validation[0].numpy()])
    assert len(own.validation[1]) == round(task.validation_fraction * 40)  # type: ignore[attr-defined]
    assert sorted(map(bytes, rows)) == sorted(map(bytes, x))
    # and training on them gives another update than the named partition's
    a, b = own.train(own.initial, 0), named.train(named.initial, 0)
    assert a.shape == b.shape and np.isfinite(a).all() and not np.allclose(a, b)


@pytest.mark.parametrize(("arrays", "named"), [
    ({"x_train": np.zeros((4, 1, 8, 8))}, "not an .npz with x_train and y_train"),
    ({"x_train": np.zeros((4, 1, 28, 28)), "y_train": np.zeros(4)},
     "x_train images are (1, 28, 28), the task's model takes (1, 8, 8)"),
    ({"x_train": np.full((4, 1, 8, 8), np.nan), "y_train": np.zeros(4)}, "NaN or infinite"),
    ({"x_train": np.zeros((4, 1, 8, 8)), "y_train": np.array([0, 1, 10, 2])},
     "label 10 in y_train is outside [0, 10)"),
    ({"x_train": np.zeros((4, 1, 8, 8)), "y_train": np.zeros(3)}, "4 images and 3 labels"),
])
def test_bad_own_files_are_one_error_naming_the_file(tmp_path: Path, arrays: dict[str, object],
                                                     named: str) -> None:
    from phalanx.errors import PhalanxError
    from phalanx.node.work import NodeWork

    np.savez(tmp_path / "bad.npz", **arrays)  # type: ignore[arg-type]
    with pytest.raises(PhalanxError) as e:
        NodeWork(_own_task(), 0, BlobStore(tmp_path / "s"), tmp_path / "bad.npz")  # type: ignore[arg-type]
    assert named in str(e.value) and "bad.npz" in str(e.value) and "\n" not in str(e.value)
