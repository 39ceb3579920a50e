"""``phalanx network up``: a local network of real peer processes on one chain node (issue 10).

It starts anvil on 127.0.0.1 (unless given ``rpc_url``), deploys the task, creates one
directory per peer (keystore, ``peer.toml``, run files), starts ``phalanx peer run`` for each
and then plays the dev chain's **block producer**: a phase has more blocks than transactions
(``phase_blocks``), and it mines to the next phase once every live peer's ``status.json``
says it is done with the current one, or after ``phase_timeout`` seconds (a dead or slow peer
cannot stall the network; on a live chain blocks come at their own pace and peers follow them
the same way). After each round it writes the simulator's run-directory files
(``sim.run.finish``: config.toml, metrics.jsonl, summary.json, model.npy, accuracy.png,
report.html) from the chain's state and the peers' ``reports/round-N.json``. Every process it
started is stopped on exit or Ctrl-C; ``network.json`` lists them for ``phalanx network down``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from eth_account import Account

from phalanx.chain.ledger import ContractLedger
from phalanx.chain.model import Phase, Reverted, TaskParams
from phalanx.errors import ChainError, ConfigError, PhalanxError, Reject
from phalanx.node.config import PeerConfig, dump_peer_toml
from phalanx.node.keystore import create_keystore
from phalanx.node.pki import issue, make_authority
from phalanx.node.retry import with_retries
from phalanx.protocol.chain_view import read_responses, read_roots, read_view
from phalanx.protocol.models import decode_model
from phalanx.protocol.round import RoundView
from phalanx.rules import Aggregate, Rejection
from phalanx.sim.chained import ETHER, MIN_STAKE, POOL, STAKE
from phalanx.sim.config import SimConfig, dump_toml
from phalanx.sim.federation import (
    AggregateOutcome,
    Federation,
    Proposal,
    RoundMetrics,
    build_federation,
    round_metrics,
)
from phalanx.sim.rundir import dumps_finite, prepare_out_dir, write_text_atomic


def phase_blocks(peers: int) -> int:
    """Blocks per phase: more than the transactions of a phase (automine: one block each; at
    most two per peer, in the beacon), few enough to mine fast (anvil mines ~200 blocks/s)."""
    return 4 * peers + 16
PHASE_NAMES = {Phase.BEACON: "beacon", Phase.PROPOSE: "propose", Phase.ATTEST: "attest",
               Phase.COMMIT: "vote", Phase.REVEAL: "vote", Phase.SETTLE: "settle"}
#: seconds between the block producer's looks at the chain and the peers' status files
PRODUCER_POLL_S = 0.02
#: RPC failures in a row the block producer survives (backoff 0.1 s doubling to 5 s: ~30 s)
PRODUCER_RETRIES = 10
#: seconds after a settlement the run waits for the live peers' round reports
REPORT_WAIT_S = 15.0
REPO_ANVIL = Path(__file__).resolve().parents[3] / "node_modules" / ".bin" / "anvil"


@dataclass
class NetworkOptions:
    """How ``network up`` runs (beyond the task's SimConfig)."""

    rpc_url: str | None = None
    phase_timeout: float = 90.0
    response_timeout: float = 20.0
    opening_timeout: float = 15.0
    base_port: int = 0
    #: called with one progress line at a time
    echo: Callable[[str], None] = print
    #: peer index -> extra environment (tests: fault injection)
    env: dict[int, dict[str, str]] = field(default_factory=dict)
    #: mutual TLS between the peers, with a private CA made for this network (node.pki)
    tls: bool = False


@dataclass
class Network:
    """A running network: its processes, chain and peers."""

    out: Path
    cfg: SimConfig
    opts: NetworkOptions
    ledger: ContractLedger
    addresses: list[str]
    configs: list[Path]
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    anvil: subprocess.Popen[bytes] | None = None

    @property
    def size(self) -> int:
        """Peer processes: the task's peers and its malformed ones (indices from ``peers``)."""
        return len(self.configs)

    @property
    def rpc_url(self) -> str:
        from phalanx.chain.rpc import RpcLedger

        assert isinstance(self.ledger, RpcLedger)
        return str(self.ledger.w3.provider.endpoint_uri)  # type: ignore[attr-defined]

    def peer_dir(self, i: int) -> Path:
        return self.out / "peers" / f"peer-{i}"

    def alive(self) -> list[int]:
        return [i for i, p in self.procs.items() if p.poll() is None]

    def status(self, i: int) -> dict[str, Any]:
        try:
            doc = json.loads((self.peer_dir(i) / "run" / "status.json").read_text())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def report(self, i: int, rnd: int) -> dict[str, Any] | None:
        try:
            doc = json.loads((self.peer_dir(i) / "run" / "reports" / f"round-{rnd}.json")
                             .read_text())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def start_peer(self, i: int) -> None:
        """Start (or restart) peer ``i``'s process."""
        log = open(self.peer_dir(i) / "stdout.log", "ab")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1",
               **self.opts.env.get(i, {})}
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "phalanx.cli", "peer", "run", "--config", str(self.configs[i])],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        self._write_pids()

    def _write_pids(self) -> None:
        pids = {str(i): p.pid for i, p in self.procs.items()}
        doc = {"peers": pids, "anvil": self.anvil.pid if self.anvil else None,
               "rpc_url": self.rpc_url,
               "contract": self.ledger.address}
        write_text_atomic(self.out / "network.json", json.dumps(doc, indent=1) + "\n")

    def stop(self) -> None:
        """SIGTERM every process started, SIGKILL what is left after a grace period."""
        stop_processes([p.pid for p in self.procs.values() if p.poll() is None])
        for p in self.procs.values():
            p.wait(timeout=10)
        if self.anvil is not None:
            stop_processes([self.anvil.pid], grace=0.0)
            self.anvil.wait(timeout=10)


def stop_processes(pids: list[int], grace: float = 8.0) -> None:
    """SIGTERM each process group, then SIGKILL the ones still alive after ``grace`` s."""
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM if grace else signal.SIGKILL)
        except ProcessLookupError:
            pass
    end = time.monotonic() + grace
    for pid in pids:
        while time.monotonic() < end and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as dead
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def start_anvil(port: int = 0,
                extra: Sequence[str] = ()) -> tuple[subprocess.Popen[bytes], str]:
    """anvil on 127.0.0.1 (automine: each transaction is one block); ``extra``: more of its
    options (e.g. ``--dump-state DIR``)."""
    import socket

    if not REPO_ANVIL.exists():
        raise ConfigError(f"anvil not found at {REPO_ANVIL}: run `make anvil`, or pass --rpc URL")
    if port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
    proc = subprocess.Popen([str(REPO_ANVIL), "--host", "127.0.0.1", "--port", str(port),
                             "--silent", *extra], start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    from phalanx.chain.rpc import RpcLedger

    end = time.monotonic() + 20
    while True:
        try:
            RpcLedger.connect(url)
            return proc, url
        except ChainError:
            if time.monotonic() > end or proc.poll() is not None:
                stop_processes([proc.pid], grace=0.0)
                raise ChainError(f"anvil did not answer at {url} within 20 s") from None
            time.sleep(0.1)


def task_params(cfg: SimConfig) -> TaskParams:
    n = phase_blocks(cfg.peers + cfg.malformed_peers)
    proposers = cfg.proposers or cfg.peers - cfg.committee - cfg.voters
    return TaskParams(min_stake=MIN_STAKE, committee_size=cfg.committee,
                      threshold=cfg.threshold, n_proposers=proposers, n_voters=cfg.voters,
                      rounds=cfg.rounds, epsilon=int(round(cfg.epsilon * 10_000)),
                      registration_blocks=n, beacon_blocks=n, propose_blocks=n,
                      attest_blocks=n, commit_blocks=n, reveal_blocks=n,
                      response_blocks=n // 2)


def check_network_config(cfg: SimConfig) -> None:
    """What a network runs: the secure per-peer protocol with a ledger."""
    if not cfg.secure:
        raise ConfigError("secure=false: a network runs the secure protocol (use --secure)")


def create_network(cfg: SimConfig, out: Path, opts: NetworkOptions) -> Network:
    """Chain, task, peer directories and configs (no peer started yet)."""
    check_network_config(cfg)
    prepare_out_dir(out, overwrite=False)
    (out / "config.toml").write_text(dump_toml(cfg.to_dict()))
    (out / "metrics.jsonl").touch()
    anvil = None
    url = opts.rpc_url
    if url is None:
        anvil, url = start_anvil()
    try:
        from phalanx.chain.rpc import RpcLedger

        fed = build_federation(cfg)
        from phalanx.protocol.models import hash_model

        deployer = Account.create()
        w3 = RpcLedger.connect(url)
        w3.provider.make_request("anvil_setBalance",  # type: ignore[arg-type]
                                 [deployer.address, hex(POOL + 10 * ETHER)])
        ledger = RpcLedger.deploy(url, task_params(cfg), deployer=deployer, pool=POOL,
                                  genesis_seed=np.random.default_rng([cfg.seed, 99]).bytes(32),
                                  initial_model=hash_model(fed.global_params))
        addresses, configs = [], []
        ca = make_authority(out / "pki") if opts.tls else None
        for i in range(cfg.peers + cfg.malformed_peers):
            d = out / "peers" / f"peer-{i}"
            store = create_keystore(d / "keystore")
            tls: dict[str, Any] = {}
            if ca is not None:
                cert, key = issue(ca, d / "tls", f"peer-{i}", ["127.0.0.1"])
                tls = dict(tls_cert=cert, tls_key=key, tls_ca=ca.cert_file)
            ledger.faucet(store.address, STAKE + ETHER)
            port = opts.base_port + i if opts.base_port else _free_port()
            pc = PeerConfig(keystore=d / "keystore", listen=f"127.0.0.1:{port}",
                            run_dir=d / "run", rpc_url=url, contract=ledger.address,
                            task=(out / "config.toml").resolve(), partition=i,
                            stake_ether=STAKE / ETHER, response_timeout=opts.response_timeout,
                            opening_timeout=opts.opening_timeout, **tls)
            (d / "peer.toml").write_text(dump_peer_toml(pc))
            addresses.append(store.address)
            configs.append(d / "peer.toml")
    except BaseException:
        if anvil is not None:
            stop_processes([anvil.pid], grace=0.0)
        raise
    net = Network(out, cfg, opts, ledger, addresses, configs, anvil=anvil)
    net._write_pids()
    return net


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the block producer and the run directory -----------------------------------------------------
class Producer:
    """Moves the dev chain's phases on once every live peer is done (or on timeout)."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.key: tuple[int, Phase] | None = None
        self.since = time.monotonic()
        self.seconds: dict[int, dict[str, float]] = {}
        self.view: RoundView | None = None
        self.view_round = -1
        #: the block at the last poll
        self.block = -1

    def tick(self) -> tuple[int, Phase]:
        led = self.net.ledger
        st = led.get_round_state() if self.key is None else self._poll(led)
        key, now = (st.round, st.phase), time.monotonic()
        if key != self.key:
            if self.key is not None and self.key[1] in PHASE_NAMES:
                secs = self.seconds.setdefault(self.key[0], {})
                name = PHASE_NAMES[self.key[1]]
                secs[name] = secs.get(name, 0.0) + now - self.since
            self.key, self.since = key, now
            if st.phase in PHASE_NAMES:
                self.net.opts.echo(f"round {st.round}: {st.phase.name.lower()}")
        if st.phase is Phase.FINISHED:
            return key
        if st.phase is Phase.ATTEST and self._close_response_window(led, st.round, now):
            return key
        live = self.net.alive()
        ready = [self.net.status(i) for i in live]
        done = all(s.get("round") == st.round and int(s.get("ready", -1)) >= int(st.phase)
                   for s in ready)
        limit = self.net.opts.phase_timeout * (3 if st.phase is Phase.REGISTRATION else 1)
        late = now - self.since > limit
        if late and not done:
            slow = [i for i, s in zip(live, ready, strict=True)
                    if not (s.get("round") == st.round and s.get("ready", -1) >= st.phase)]
            self.net.opts.echo(f"round {st.round}: {st.phase.name.lower()} timed out "
                               f"waiting for peers {slow}")
        if done or late:
            if st.phase is Phase.SETTLE:
                if late:  # nobody settled: anyone may
                    try:
                        led.settle(_payer(led))
                    except Reverted:
                        pass
                    self.since = now
            else:
                led.advance_to(Phase(int(st.phase) + 1))
        return key


    def _close_response_window(self, led: ContractLedger, rnd: int, now: float) -> bool:
        """While the contract's response window is open: mine to its end once every proposer
        with a part-1 root on chain posted its part-2 root, or after ``response_timeout``
        (True: still open)."""
        end = led.get_phase_end(Phase.PROPOSE) + led.params.response_blocks
        block = led.get_block()
        if block >= end:
            return False
        if self.view is None or self.view_round != rnd:
            self.view, self.view_round = read_view(led), rnd
        view = self.view
        bundles = read_roots(led, view)
        if set(bundles) <= set(read_responses(led, view)) \
                or now - self.since > self.net.opts.response_timeout:
            led.mine(end - block)
            return False
        return True

    def _poll(self, led: ContractLedger) -> Any:
        """Round and phase only (the full state is read when they change); nothing on chain
        changes between blocks, so at an unchanged block number not even those."""
        assert self.key is not None
        block = led.get_block()
        if block == self.block:
            return _Light(*self.key)
        self.block = block
        r, ph = led._calls([("round", ()), ("get_phase", ())])
        key = (int(r), Phase(int(ph)))
        if key == self.key:
            return _Light(*key)
        return led.get_round_state()


@dataclass
class _Light:
    round: int
    phase: Phase


def _payer(led: ContractLedger) -> Any:
    acct = Account.create()
    led.faucet(acct.address, ETHER)
    return acct


def peer_index(net: Network) -> dict[str, int]:
    return {a: i for i, a in enumerate(net.addresses)}


def round_row(net: Network, fed: Federation, rnd: int, seconds: dict[str, float],
              model: np.ndarray, chain: Settled) -> RoundMetrics:
    from phalanx.protocol.models import hash_model

    model_hash = hash_model(model)
    """The round's metrics.jsonl row, from the peers' reports and the chain."""
    index = peer_index(net)
    reports = {i: r for i in range(net.size) if (r := net.report(i, rnd)) is not None}
    members = [r["member"] for r in reports.values() if r.get("member")]
    good = [m for m in members if m["done"] and m["aborted"] is None and m["output"]]
    # the view most members reached (a corrupt member's own report may differ from it)
    views = [json.dumps([m["verdicts"], m["cheaters"]], sort_keys=True) for m in good]
    good.sort(key=lambda m: -views.count(json.dumps([m["verdicts"], m["cheaters"]],
                                                    sort_keys=True)))
    ref = good[0] if good else (members[0] if members else None)
    proposers = [index.get(a, -1) for a in (ref or {}).get("proposers", [])]
    dim = model.size
    extra: dict[str, Any] = {"aborted": None if good else
                             (ref or {}).get("aborted") or "no member finished"}
    accepted, rejected = [], []
    if good and ref is not None:
        for c, v in sorted(ref["verdicts"].items(), key=lambda kv: int(kv[0])):
            if v is None:
                accepted.append(int(c))
            else:
                rejected.append(Rejection(int(c), Reject(v[0]), v[1]))
        extra["cheating_servers"] = ref["cheaters"]
    agg = Aggregate(np.zeros(dim, np.float32), tuple(accepted), tuple(rejected),
                    dict(ref["revealed"]) if good and ref else {})
    fed.global_params = model
    row = round_metrics(fed, rnd, Proposal(proposers, [], AggregateOutcome(agg, extra)),
                        seconds)
    settlement = next((r["settlement"] for r in reports.values() if r.get("settlement")), None)
    stakes = [x / ETHER for x in chain.stakes]
    bad = fed.malicious
    row.extra["ledger"] = {
        "committee": [index.get(a, -1) for a in (ref or {}).get("committee", [])],
        "proposers": proposers,
        "voters": [index.get(a, -1) for a in (ref or {}).get("voters", [])],
        "ballots": {str(i): r["ballot"] for i, r in sorted(reports.items())
                    if r.get("ballot") is not None},
        "stands": bool(settlement and settlement["stands"]),
        "accepted": bool(settlement and settlement["accepted"]),
        "slashed": [[index.get(a, -1), why, amt]
                    for a, why, amt in (settlement or {}).get("slashes", [])],
        "rewarded_ether": sum((settlement or {}).get("rewards", {}).values()),
        "stakes": stakes,
        "honest_stake_ether": sum(s for i, s in enumerate(stakes) if i not in bad),
        "malicious_stake_ether": sum(s for i, s in enumerate(stakes) if i in bad),
        "pool_ether": chain.pool / ETHER,
    }
    row.extra["refused_messages"] = [{"peer": i, **x} for i, r in sorted(reports.items())
                                     for x in r.get("refused", [])]
    row.extra["transport_rejected"] = {str(i): r.get("transport_rejected", {})
                                       for i, r in sorted(reports.items())}
    row.extra["peer_notes"] = [{"peer": i, **n} for i, r in sorted(reports.items())
                               for n in r.get("notes", [])]
    row.extra["network"] = {"model": model_hash.hex(), "bytes_sent": {str(i): r.get("bytes_sent", 0)
                                           for i, r in sorted(reports.items())},
                            "roles": {str(i): r.get("role") for i, r in sorted(reports.items())},
                            "unreachable": sorted({index.get(a, -1) for r in reports.values()
                                                   for a in r.get("unreachable", [])}),
                            "alive": net.alive()}
    return row


def load_model(net: Network, address: bytes) -> np.ndarray | None:
    """The model at ``address`` from any peer's store (hash-checked)."""
    for i in range(net.size):
        path = net.peer_dir(i) / "run" / "blobs" / address.hex()
        if path.is_file():
            return decode_model(path.read_bytes(), address)
    return None


def run_network(net: Network, *, on_round: Callable[[RoundMetrics], None] | None = None,
                max_wall: float | None = None) -> dict[str, Any]:
    """Start every peer, produce blocks until the task finishes, write the run directory."""
    from phalanx.sim.run import finish, read_summary

    cfg, out = net.cfg, net.out
    start = time.perf_counter()
    fed = build_federation(cfg)
    params = fed.global_params.copy()
    history: list[RoundMetrics] = []
    status, error = "failed", None
    producer = Producer(net)
    setup_s = 0.0
    try:
        for i in range(net.size):
            net.start_peer(i)
        setup_s = time.perf_counter() - start
        last = net.ledger.get_round_state().round
        # settled rounds whose row waits for the reports: (deadline, the chain at settlement)
        pending: dict[int, tuple[float, Settled]] = {}
        with (out / "metrics.jsonl").open("a") as sink:
            while True:
                rnd, phase = with_retries(producer.tick, url=net.rpc_url,
                                          first_wait=0.1, tries=PRODUCER_RETRIES)
                if rnd != last or phase is Phase.FINISHED:
                    if phase is Phase.FINISHED or rnd > last:
                        pending[last] = (time.monotonic() + REPORT_WAIT_S, settled_state(net))
                    last = rnd
                # the rows of settled rounds, once their reports are in: the next round's
                # phases go on meanwhile (a row built in line stalled its first phase)
                for r in sorted(pending):
                    if not _reports_in(net, r, pending[r][0], final=phase is Phase.FINISHED):
                        break
                    row = _settled(net, fed, producer, r, pending.pop(r)[1])
                    if row is None:
                        continue
                    params = fed.global_params.copy()
                    history.append(row)
                    sink.write(dumps_finite(dataclasses.asdict(row)) + "\n")
                    sink.flush()
                    net.opts.echo(_progress(row))
                    if on_round is not None:
                        on_round(row)
                if phase is Phase.FINISHED and not pending:
                    break
                if max_wall is not None and time.perf_counter() - start > max_wall:
                    raise PhalanxError(f"the network did not finish within {max_wall:.0f} s")
                time.sleep(PRODUCER_POLL_S)
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException as e:
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        net.stop()
        finish(cfg, out, fed, params, history, status, error, setup_s,
               time.perf_counter() - start)
    return read_summary(out)


def _reports_in(net: Network, rnd: int, deadline: float, *, final: bool) -> bool:
    """Every live peer's report of round ``rnd`` is written, or it is time to do without
    (``REPORT_WAIT_S`` after the settlement; at the end of the task, blocking until then)."""
    while True:
        if all(net.report(i, rnd) is not None for i in net.alive()) \
                or time.monotonic() > deadline:
            return True
        if not final:
            return False
        time.sleep(PRODUCER_POLL_S)


@dataclass(frozen=True)
class Settled:
    """What the chain says right after a settlement (the row is built later, from this)."""

    model_hash: bytes
    stakes: list[int]
    pool: int


def settled_state(net: Network) -> Settled:
    st = net.ledger.get_round_state()
    stakes = net.ledger._calls([("stake_of", (a,)) for a in net.addresses])
    return Settled(st.model_hash, [int(x) for x in stakes], st.pool)


def _settled(net: Network, fed: Federation, producer: Producer, rnd: int,
             chain: Settled) -> RoundMetrics | None:
    """Round ``rnd`` settled and its reports are in: its row (None: nobody reported)."""
    if all(net.report(i, rnd) is None for i in range(net.size)):
        return None
    model = load_model(net, chain.model_hash)
    if model is None:
        raise PhalanxError(f"round {rnd}: the chain's model {chain.model_hash.hex()[:16]} is "
                           "held by no peer")
    return round_row(net, fed, rnd, producer.seconds.get(rnd, {}), model, chain)


def _progress(row: RoundMetrics) -> str:
    led = row.extra["ledger"]
    refused = len(row.extra["refused_messages"])
    return (f"round {row.round} settled: accuracy {row.accuracy:.4f}, accepted "
            f"{row.accepted}/{row.proposers}, committee {led['committee']}, proposers "
            f"{led['proposers']}, voters {led['voters']}, result "
            f"{'accepted' if led['accepted'] else 'not accepted'}, refused messages {refused}, "
            f"stakes {[round(s, 2) for s in led['stakes']]}")


def network_down(out: Path) -> list[int]:
    """Stop the processes a network directory lists; returns the pids signalled."""
    try:
        doc = json.loads((out / "network.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"dir={out}: no readable network.json ({e})") from e
    pids = [int(p) for p in doc.get("peers", {}).values()]
    if doc.get("anvil"):
        pids.append(int(doc["anvil"]))
    live = [p for p in pids if _alive(p)]
    stop_processes(live)
    return live
