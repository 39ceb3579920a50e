"""Per-peer protocol vs the in-process secure driver vs plaintext: accuracy per round (issue 9).

    .venv/bin/python benchmarks/peer_accuracy.py [--seeds 0,1] [--rounds 20] [--json]

The same configuration (the embedded defaults: digits, 20 peers, 20% sign-flip, fltrust, with
the ledger on the embedded EVM) is played three ways in one process, one after the other:
``peers`` (N peers' state machines over the loopback transport, `sim/peers.py`, OS secrets —
what `phalanx simulate --secure --ledger embedded` runs), ``driver`` (the in-process secure
backend, `sim/chained.py`, which every secure ledger run used before issue 9) and
``plaintext`` (no MPC, no ledger). It prints each round's accuracy and the largest per-round
difference between peers and driver; with ``--json`` the last line is one JSON object.
Roles differ between the two secure paths (the peers' beacon secrets come from the OS), so
the comparison is of the learning curves, not of identical rounds.
"""

from __future__ import annotations

import argparse
import json
import time

from phalanx.sim.config import SimConfig
from phalanx.sim.federation import build_federation, run_round


def _curve(cfg: SimConfig, mode: str) -> tuple[list[float], float]:
    t0 = time.perf_counter()
    if mode == "peers":
        from phalanx.sim.peers import build_peer_run, run_peer_round

        run = build_peer_run(cfg)
        accs = [run_peer_round(run, r).accuracy for r in range(cfg.rounds)]
    elif mode == "driver":
        from phalanx.sim.chained import build_chained, run_chained_round

        chained = build_chained(cfg)
        accs = [run_chained_round(chained, r).accuracy for r in range(cfg.rounds)]
    else:
        fed = build_federation(cfg)
        accs = [run_round(fed, r).accuracy for r in range(cfg.rounds)]
    return accs, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--paths", default="peers,driver,plaintext",
                    help="which of peers, driver, plaintext to run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict[str, object] = {"rounds": args.rounds, "seeds": {}}
    for seed in (int(s) for s in args.seeds.split(",")):
        secure = SimConfig(secure=True, ledger="embedded", seed=seed, rounds=args.rounds)
        plain = SimConfig(seed=seed, rounds=args.rounds, secure=False, ledger="none")
        curves, secs = {}, {}
        paths = args.paths.split(",")
        for mode, cfg in (("peers", secure), ("driver", secure), ("plaintext", plain)):
            if mode not in paths:
                continue
            curves[mode], secs[mode] = _curve(cfg, mode)
            print(f"seed {seed} {mode:9s} {secs[mode]:6.1f} s  final "
                  f"{curves[mode][-1]:.4f}  " + " ".join(f"{a:.3f}" for a in curves[mode]),
                  flush=True)
        row: dict[str, object] = {"curves": curves, "seconds": secs,
                                  "final": {k: v[-1] for k, v in curves.items()}}
        if "peers" in curves and "driver" in curves:
            pairs = list(zip(curves["peers"], curves["driver"], strict=True))
            row["max_diff"] = max(abs(a - b) for a, b in pairs)
            row["max_diff_from_round5"] = max(abs(a - b) for a, b in pairs[5:])
            print(f"seed {seed}: max |peers - driver| per round {row['max_diff']:.4f} "
                  f"(rounds 5+: {row['max_diff_from_round5']:.4f})", flush=True)
        out["seeds"][str(seed)] = row  # type: ignore[index]
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
