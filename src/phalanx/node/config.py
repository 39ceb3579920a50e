"""A peer's configuration, ``peer.toml`` (docs/network.md, "Running a peer").

``[peer]``: ``keystore`` (directory), ``listen`` (host:port it serves on), ``advertise``
(host:port registered on chain as its endpoint; default: ``listen``), ``run_dir`` (blobs, state,
log, reports). ``[chain]``: ``rpc_url``, ``contract``. ``[data]``: ``task`` (the task's
``config.toml``, the same file ``phalanx simulate --config`` reads: dataset, model, rule, seed)
and ``partition`` (this peer's index in the task's public partition of the named dataset), or
``files`` (an ``.npz`` of its own ``x_train``/``y_train``). ``[timing]``: seconds a member waits
for part-2 roots and openings before it proceeds with what it has (erasures). ``[tls]``
(optional; mutual TLS between peers): ``cert``, ``key`` (this peer's PEM certificate and key,
used as server and as client) and ``ca`` (the CA bundle that signs the other peers'), all three
or none; ``server_name`` (optional) overrides the name checked in a peer's certificate.

Relative paths are relative to the file. Every bad value is a one-line ConfigError naming it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from phalanx.errors import ConfigError
from phalanx.net.grpc_transport import TlsConfig

SECTIONS = ("peer", "chain", "data", "timing", "tls")
TLS_KEYS = {"cert": "tls_cert", "key": "tls_key", "ca": "tls_ca",
            "server_name": "tls_server_name"}


@dataclass(frozen=True)
class PeerConfig:
    """One peer's resolved ``peer.toml``."""

    keystore: Path
    listen: str
    run_dir: Path
    rpc_url: str
    contract: str
    task: Path
    partition: int | None = None
    files: Path | None = None
    advertise: str | None = None
    stake_ether: float = 10.0
    #: seconds after the commitment deadline a member waits for part 2 (then: what it has)
    response_timeout: float = 20.0
    #: seconds without progress before an opening times out (missing shares: erasures)
    opening_timeout: float = 15.0
    #: seconds between chain polls (one batched JSON-RPC request each; doubled on each RPC
    #: error, at most 5 s, up to ``rpc_retries`` times: ~16 s of backoff at the defaults)
    poll: float = 0.05
    rpc_retries: int = 10
    #: mutual TLS: this peer's certificate and key, the CA bundle of the others (all or none)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    tls_server_name: str | None = None

    @property
    def endpoint(self) -> str:
        return self.advertise or self.listen

    def transport_tls(self) -> TlsConfig | None:
        """The transport's mutual-TLS configuration, or None (plaintext gRPC: loopback tests)."""
        if self.tls_cert is None or self.tls_key is None or self.tls_ca is None:
            return None
        return TlsConfig(self.tls_cert, self.tls_key, self.tls_ca,
                         server_name=self.tls_server_name)


def _check_host_port(name: str, value: Any) -> str:
    host, sep, port = str(value).rpartition(":")
    if not isinstance(value, str) or not sep or not host or not port.isdigit() \
            or not 0 <= int(port) < 65536:
        raise ConfigError(f"{name}={value!r} must be host:port")
    return value


def load_peer_config(path: Path | str) -> PeerConfig:
    """Read and check ``peer.toml``."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"config={path} does not exist") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config={path} is not valid TOML: {e}") from e
    unknown = sorted(set(doc) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"config={path}: unknown section(s) {unknown}; known: {list(SECTIONS)}")
    flat: dict[str, Any] = {}
    for section in SECTIONS:
        table = doc.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"config={path}: [{section}] must be a table")
        if section == "tls":
            bad = sorted(set(table) - set(TLS_KEYS))
            if bad:
                raise ConfigError(f"config={path}: unknown [tls] key(s) {bad}; known: "
                                  f"{sorted(TLS_KEYS)}")
            table = {TLS_KEYS[k]: x for k, x in table.items()}
        flat.update(table)
    return make_peer_config(flat, path.parent)


def make_peer_config(values: dict[str, Any], base: Path) -> PeerConfig:
    """A checked PeerConfig from flat values (paths relative to ``base``)."""
    known = {f.name for f in fields(PeerConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown peer config key(s) {unknown}; known keys are {sorted(known)}")
    missing = [k for k in ("keystore", "listen", "run_dir", "rpc_url", "contract", "task")
               if k not in values]
    if missing:
        raise ConfigError(f"peer config is missing {missing}")
    v = dict(values)
    for key in ("keystore", "run_dir", "task", "files", "tls_cert", "tls_key", "tls_ca"):
        if v.get(key) is not None:
            if not isinstance(v[key], str) or not v[key]:
                raise ConfigError(f"{key}={v[key]!r} must be a path")
            v[key] = (base / Path(v[key]).expanduser()).resolve()
    _check_host_port("listen", v["listen"])
    if v.get("advertise") is not None:
        _check_host_port("advertise", v["advertise"])
    url = v["rpc_url"]
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"rpc_url={url!r} must be an http(s) URL")
    c = v["contract"]
    if not isinstance(c, str) or len(c) != 42 or not c.startswith("0x") \
            or any(ch not in "0123456789abcdefABCDEF" for ch in c[2:]):
        raise ConfigError(f"contract={c!r} must be a 0x-prefixed 20-byte hex address")
    if (v.get("partition") is None) == (v.get("files") is None):
        raise ConfigError("data: give exactly one of partition (an index) or files (an .npz)")
    p = v.get("partition")
    if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p < 0):
        raise ConfigError(f"partition={p!r} must be an integer >= 0")
    tls = [k for k in ("tls_cert", "tls_key", "tls_ca") if v.get(k) is not None]
    if tls and len(tls) != 3:
        raise ConfigError(f"tls: give cert, key and ca together (got only {tls})")
    for k in tls:
        if not v[k].is_file():
            raise ConfigError(f"{k}={v[k]} does not exist")
    name = v.get("tls_server_name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"tls_server_name={name!r} must be a host name")
    if not v["task"].is_file():
        raise ConfigError(f"task={v['task']} does not exist")
    for key in ("stake_ether", "response_timeout", "opening_timeout", "poll"):
        x = v.get(key)
        if x is not None and (isinstance(x, bool) or not isinstance(x, int | float) or x <= 0):
            raise ConfigError(f"{key}={x!r} must be a number > 0")
    r = v.get("rpc_retries")
    if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 1):
        raise ConfigError(f"rpc_retries={r!r} must be an integer >= 1")
    return PeerConfig(**v)


def dump_peer_toml(cfg: PeerConfig) -> str:
    """``peer.toml`` text for ``cfg`` (absolute paths)."""
    def q(x: Any) -> str:
        return f'"{x}"' if isinstance(x, str | Path) else repr(x)

    sections = {
        "peer": ["keystore", "listen", "advertise", "run_dir", "stake_ether"],
        "chain": ["rpc_url", "contract"],
        "data": ["task", "partition", "files"],
        "timing": ["response_timeout", "opening_timeout", "poll", "rpc_retries"],
        "tls": list(TLS_KEYS.values()),
    }
    out = []
    for name, keys in sections.items():
        lines = [f"{k.removeprefix('tls_') if name == 'tls' else k} = {q(getattr(cfg, k))}"
                 for k in keys if getattr(cfg, k) is not None]
        if lines or name != "tls":
            out += [f"[{name}]", *lines, ""]
    return "\n".join(out)
