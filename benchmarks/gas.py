"""Gas per round by function and role, and wall time per round of chain work.

``--peers`` registered peers (default 100), k = 64 seats: m = 16 (t = 5), 32 proposers, 16
voters. Each round: last round's beacon contributors reveal, one peer closes the beacon (draws
the roles: O(k log n) in the Fenwick tree), the role holders commit the next round's secrets,
the proposers post bundle roots, 15 of 16 members attest a result that accepts the other
proposers, rejects one client and identifies the sixteenth member, voters commit and reveal,
one peer settles.

Gas comes from the embedded backend (py-evm execution gas: no 21000 intrinsic, no calldata)
and, for at most --anvil-peers peers, from anvil's receipts (real gasUsed, intrinsic included).

    .venv/bin/python benchmarks/gas.py --rounds 3          # anvil too (node_modules/.bin/anvil)
    .venv/bin/python benchmarks/gas.py --peers 10000 --json  # last line: one JSON object
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from eth_account import Account

from phalanx.chain.driver import RoundDriver
from phalanx.chain.ledger import Attestation, ContractLedger, Roles, make_ledger
from phalanx.chain.model import TaskParams
from phalanx.errors import Reject

ETH = 10**18
ANVIL = Path(os.environ.get(  # ANVIL=/path/to/anvil overrides (e.g. from a git worktree)
    "ANVIL", Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "anvil"))
ROLE_OF_FN = {
    "register": "every peer (once)", "commit_beacon": "role holder (next round's beacon)",
    "reveal_beacon": "last round's role holder",
    "close_beacon": "anyone (once)", "post_bundle": "proposer", "attest": "committee member",
    "commit_vote": "voter", "reveal_vote": "voter", "settle": "anyone (once)",
}


def make_params(phase_blocks: int, peers: int) -> TaskParams:
    """The benchmark's task: k = 64 seats (m=16, t=5, 32 proposers, 16 voters)."""
    return TaskParams(
        min_stake=ETH, committee_size=16, threshold=5, n_proposers=32, n_voters=16, rounds=50,
        sigma_p=500, registration_blocks=2 * phase_blocks, beacon_blocks=phase_blocks,
        propose_blocks=phase_blocks, attest_blocks=phase_blocks, commit_blocks=phase_blocks,
        reveal_blocks=phase_blocks, unbond_delay=1, max_peers=max(peers, 64),
    )


def _attest(member: str, roles: Roles) -> Attestation | None:
    if member == roles.committee[-1]:
        return None  # the identified server stays silent
    return Attestation(b"\x5a" * 32, ((roles.proposers[0], Reject.RANGE_PROOF),),
                       (roles.committee[-1],), tuple(roles.proposers[1:]))


def run(backend: str, rounds: int, url: str | None, peers: int = 100) -> dict[str, object]:
    """Play ``rounds`` rounds; return gas per function and seconds per round."""
    rng = random.Random(1)
    accounts = [Account.from_key(rng.getrandbits(256).to_bytes(32, "big"))
                for _ in range(peers + 1)]
    params = make_params(4 * 64 if backend == "rpc" else 1, peers)
    if url is not None:
        from web3.types import RPCEndpoint

        from phalanx.chain.rpc import RpcLedger

        RpcLedger.connect(url).provider.make_request(
            RPCEndpoint("anvil_setBalance"), [accounts[0].address, hex(10**6 * ETH)])
    led: ContractLedger = make_ledger(backend, params=params, deployer=accounts[0],
                                      pool=100 * ETH, genesis_seed=b"\x01" * 32, rpc_url=url)
    drv = RoundDriver(led, rng)
    drv.register_all(accounts[1:], [ETH * (1 + i % 5) for i in range(peers)])
    setup_gas = list(led.gas_log)
    led.gas_log.clear()
    t0 = time.perf_counter()
    for _ in range(rounds):
        res = drv.play_round(vote=lambda v: int(v, 16) % 11 < 8, attest=_attest)
        assert res.settlement.stands
    per_round_s = (time.perf_counter() - t0) / rounds
    return {"backend": backend, "rounds": rounds, "peers": peers, "seats": params.seats,
            "seconds_per_round": per_round_s,
            "gas_per_round": sum(g for _, g in led.gas_log) / rounds,
            "max_gas_per_call": max(g for _, g in led.gas_log + setup_gas if _ != "deploy"),
            "by_function": _summarize(led.gas_log, rounds),
            "setup": _summarize(setup_gas, 1)}


def _summarize(log: list[tuple[str, int]], rounds: int) -> dict[str, dict[str, float]]:
    by_fn: dict[str, list[int]] = defaultdict(list)
    for fn, gas in log:
        by_fn[fn].append(gas)
    return {fn: {"calls_per_round": len(v) / rounds, "mean": statistics.mean(v),
                 "min": min(v), "max": max(v)} for fn, v in by_fn.items()}


def start_anvil() -> tuple[subprocess.Popen[bytes], str]:
    """Start anvil on a free port; returns the process and its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"],
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    from phalanx.chain.rpc import RpcLedger

    for _ in range(200):
        try:
            RpcLedger.connect(url)
            return proc, url
        except Exception:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("anvil did not start")


def print_table(res: dict[str, object], title: str) -> None:
    """A markdown table of gas by function."""
    print(f"\n### {title}\n")
    print("| function | role | calls/round | mean gas | min | max |")
    print("|---|---|---:|---:|---:|---:|")
    by_fn, setup = res["by_function"], res["setup"]
    assert isinstance(by_fn, dict) and isinstance(setup, dict)
    rows = [(f"{fn} (setup)", setup[fn]) for fn in ("deploy", "register", "commit_beacon")
            if fn in setup] + [(fn, by_fn[fn]) for fn in ROLE_OF_FN if fn in by_fn]
    for name, r in rows:
        role = ROLE_OF_FN.get(name.split()[0], "deployer")
        calls = "-" if "setup" in name else f"{r['calls_per_round']:g}"
        print(f"| {name} | {role} | {calls} | {r['mean']:,.0f} | {r['min']:,} | {r['max']:,} |")
    print(f"\ngas per round (all calls): {res['gas_per_round']:,.0f}; "
          f"wall time per round: {res['seconds_per_round']:.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peers", type=int, default=100)
    ap.add_argument("--anvil-peers", type=int, default=200,
                    help="run anvil too when --peers is at most this (registration is slow)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    emb = run("embedded", args.rounds, None, args.peers)
    out: dict[str, object] = {"embedded": emb}
    print_table(emb, "embedded (titanoboa py-evm): execution gas, no intrinsic")
    if args.peers > args.anvil_peers:
        print(f"\nanvil skipped: --peers {args.peers} > --anvil-peers {args.anvil_peers}")
    elif ANVIL.exists():
        proc, url = start_anvil()
        try:
            out["anvil"] = run("rpc", args.rounds, url, args.peers)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
        print_table(out["anvil"], "anvil (rpc backend): receipt gasUsed")
    else:
        print(f"\n{ANVIL} missing (run `make anvil`): anvil numbers skipped")
    if args.json:
        worst = max(r["max_gas_per_call"] for r in out.values() if isinstance(r, dict))
        print(json.dumps({"peers": args.peers, "seats": emb["seats"], "max_gas_per_call": worst,
                          "by_function": emb["by_function"], **out}, sort_keys=True))


if __name__ == "__main__":
    main()
