"""A real network round against the simulated one (issue 10; docs/network.md, "Measured").

    PYTHONPATH=src .venv/bin/python benchmarks/network.py --peers 8 --rounds 2

Runs ``phalanx network up`` (N peer processes over gRPC, the contract on anvil) and then
``sim.peers`` (the same per-peer protocol in one process over the loopback transport, the
embedded EVM) on the same configuration, and prints, per round: seconds by chain phase of the
network (beacon, propose, attest, vote, settle) against the simulator's phases, and protocol
payload bytes sent per peer and role (the network's peers count their gRPC payloads, the
simulator's loopback endpoints theirs; both count each message's bytes once). Roles are drawn
from OS-random keys in both, so rounds compare like for like only by role.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any


def network_rounds(cfg: Any, out: Path) -> list[dict[str, Any]]:
    from phalanx.node.network import NetworkOptions, create_network, run_network

    def echo(line: str) -> None:
        print(f"  net {time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d}:", line,
              flush=True)

    net = create_network(cfg, out, NetworkOptions(echo=echo))
    run_network(net, max_wall=1800)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    before: dict[str, int] = defaultdict(int)
    out_rows = []
    for r in rows:
        sent = r["extra"]["network"]["bytes_sent"]
        roles = r["extra"]["network"]["roles"]
        by_role: dict[str, list[int]] = defaultdict(list)
        for peer, total in sent.items():
            by_role[roles.get(peer) or "none"].append(total - before[peer])
            before[peer] = total
        out_rows.append({"round": r["round"], "seconds": r["seconds"],
                         "accuracy": r["accuracy"], "bytes": dict(by_role)})
    return out_rows


def sim_rounds(cfg: Any) -> list[dict[str, Any]]:
    from phalanx.sim.peers import build_peer_run, run_peer_round

    run = build_peer_run(cfg)
    before = [0] * len(run.peers)
    rows = []
    for rnd in range(1, cfg.rounds + 1):
        start = time.perf_counter()
        m = run_peer_round(run, rnd)
        wall = time.perf_counter() - start
        led = m.extra["ledger"]
        roles = {**{i: "member" for i in led["committee"]},
                 **{i: "proposer" for i in led["proposers"]},
                 **{i: "voter" for i in led["voters"]}}
        by_role: dict[str, list[int]] = defaultdict(list)
        for i, ep in enumerate(run.endpoints):
            total = sum(ep.stats.bytes_sent.values())
            by_role[roles.get(i, "none")].append(total - before[i])
            before[i] = total
        rows.append({"round": rnd, "seconds": {**m.seconds, "wall": wall},
                     "accuracy": m.accuracy, "bytes": dict(by_role)})
    return rows


def show(label: str, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        secs = {k: round(v, 2) for k, v in r["seconds"].items()}
        total = sum(v for k, v in r["seconds"].items() if k not in ("wall", "evaluate"))
        print(f"{label} round {r['round']}: {total:.1f} s {secs} accuracy {r['accuracy']:.4f}")
        for role, values in sorted(r["bytes"].items()):
            mean = sum(values) / max(1, len(values))
            print(f"    {role:9s} x{len(values)}: {mean / 1e3:10.1f} kB sent per peer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--peers", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--committee", type=int, default=4)
    ap.add_argument("--voters", type=int, default=2)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None,
                    help="write the network's run directory (peer logs) here instead of a "
                         "temporary one")
    args = ap.parse_args()
    from phalanx.sim.config import SimConfig

    cfg = SimConfig(peers=args.peers, rounds=args.rounds, secure=True, ledger="embedded",
                    rule="fltrust", attack="none", malicious=0.0, committee=args.committee,
                    threshold=1, voters=args.voters, model=args.model, dataset=args.dataset,
                    data_dir=args.data_dir, seed=args.seed)
    if args.keep is not None:
        net = network_rounds(cfg, args.keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            net = network_rounds(cfg, Path(tmp) / "net")
    show("network", net)
    show("simulate", sim_rounds(cfg))


if __name__ == "__main__":
    main()
