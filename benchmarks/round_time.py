"""Seconds per simulated round, split into train / aggregate / evaluate (issue: 100 peers × cnn1m).

    .venv/bin/python benchmarks/round_time.py --peers 100 --model cnn1m --dataset mnist \
        --data-dir ../shared/data/mnist --rounds 1

Prints one table row per round and, for the aggregation alone, the best of ``--repeat`` timings of
the plaintext rule on the same stacked updates (check + combine over 100 × d float32), with the
ratio aggregate/train. ``--secure`` plays whole simulator rounds (``sim.federation.run_round``)
under the committee MPC instead and prints every phase: train, attack, reference, prepare,
aggregate = clients (encode, witness, share, seal, upload: all n simulated clients) + committee
(the m servers' passes, openings and decoding), evaluate. Results: docs/round_time.md.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from phalanx.rules import RuleContext
from phalanx.sim.config import SimConfig
from phalanx.sim.federation import (
    Federation,
    build_federation,
    collect_updates,
    evaluate_global,
    prepare_inputs,
    reference_for,
    run_round,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--peers", type=int, default=100)
    ap.add_argument("--model", default="cnn1m")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default="../shared/data/mnist")
    ap.add_argument("--rule", default="fltrust")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--malicious", type=float, default=0.2)
    ap.add_argument("--attack", default="sign-flip")
    ap.add_argument("--secure", action="store_true", help="whole rounds under the MPC")
    ap.add_argument("--committee", type=int, default=5)
    ap.add_argument("--threshold", type=int, default=1)
    ap.add_argument("--frac-bits", type=int, default=None, help="default: automatic")
    ap.add_argument("--samples-per-peer", type=int, default=0, help="0 = each peer's whole shard")
    ap.add_argument("--local-epochs", type=int, default=5)
    args = ap.parse_args()

    secure = dict(secure=True, committee=args.committee, threshold=args.threshold,
                  frac_bits=args.frac_bits) if args.secure else dict(secure=False)
    cfg = SimConfig(peers=args.peers, model=args.model, dataset=args.dataset,
                    data_dir=args.data_dir, rule=args.rule, rounds=args.rounds,
                    malicious=args.malicious, attack=args.attack,
                    samples_per_peer=args.samples_per_peer, local_epochs=args.local_epochs,
                    ledger="none", **secure)
    fed = build_federation(cfg)
    if args.secure:
        return secure_rounds(fed, args.rounds)
    dim = fed.global_params.size
    print(f"# {args.peers} peers, {args.model} (d={dim:,}), {args.dataset}, rule {args.rule}")
    print("round | train_s | attack_s | aggregate_s (best) | evaluate_s | aggregate/train")
    for rnd in range(1, args.rounds + 1):
        seconds: dict[str, float] = {}
        ids, raw = collect_updates(fed, rnd, seconds)
        ctx = RuleContext(dim=dim, reference=reference_for(fed, rnd),
                          num_byzantine=cfg.num_malicious)
        prepared = prepare_inputs(fed, ids, raw, ctx)
        timings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            agg = fed.rule.aggregate(prepared, ctx)
            timings.append(time.perf_counter() - start)
        fed.global_params = fed.global_params + agg.vector
        start = time.perf_counter()
        acc, _, _ = evaluate_global(fed)
        eval_s = time.perf_counter() - start
        best = min(timings)
        print(f"{rnd} | {seconds['train']:.2f} | {seconds['attack']:.3f} | {best:.3f} | "
              f"{eval_s:.2f} | {best / seconds['train']:.4f}")
        print(json.dumps({"round": rnd, "peers": len(ids), "dim": dim, "train_s": seconds["train"],
                          "aggregate_best_s": best, "aggregate_all_s": timings,
                          "evaluate_s": eval_s, "accuracy": acc,
                          "aggregate_over_train": best / seconds["train"]}))


def secure_rounds(fed: Federation, rounds: int) -> None:
    """Whole rounds under the MPC: one row of per-phase seconds each (wall clock)."""
    cfg = fed.cfg
    dim = fed.global_params.size
    print(f"# {cfg.peers} peers, {cfg.model} (d={dim:,}), {cfg.dataset}, rule {cfg.rule}, "
          f"secure m={cfg.committee} t={cfg.threshold}")
    print("round | train | attack | reference | prepare | aggregate (clients + committee) | "
          "evaluate | total | accuracy")
    for rnd in range(1, rounds + 1):
        start = time.perf_counter()
        m = run_round(fed, rnd)
        total = time.perf_counter() - start
        s, x = m.seconds, m.extra
        print(f"{rnd} | {s['train']:.1f} | {s['attack']:.2f} | {s['reference']:.2f} | "
              f"{s['prepare']:.2f} | {s['aggregate']:.1f} ({x['phase_s']['clients']:.1f} + "
              f"{x['phase_s']['committee']:.1f}) | {s['evaluate']:.1f} | {total:.1f} | "
              f"{m.accuracy:.4f}")
        print(json.dumps({"round": rnd, "peers": m.proposers, "dim": dim, "seconds": s,
                          "phase_s": x["phase_s"], "slowest_server_s": x["slowest_server_s"],
                          "upload_bytes_per_client": x["upload_bytes_per_client"],
                          "frac_bits": x["frac_bits"], "accepted": m.accepted,
                          "rejected": len(m.rejected), "aborted": x["aborted"],
                          "accuracy": m.accuracy, "total_s": total}))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
