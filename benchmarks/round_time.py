"""Seconds per simulated round, split into train / aggregate / evaluate (issue: 100 peers × cnn1m).

    .venv/bin/python benchmarks/round_time.py --peers 100 --model cnn1m --dataset mnist \
        --data-dir ../shared/data/mnist --rounds 1

Prints one table row per round and, for the aggregation alone, the best of ``--repeat`` timings of
the plaintext rule on the same stacked updates (check + combine over 100 × d float32), with the
ratio aggregate/train. Results are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from phalanx.rules import RuleContext
from phalanx.sim.config import SimConfig
from phalanx.sim.federation import (
    build_federation,
    collect_updates,
    evaluate_global,
    prepare_inputs,
    reference_for,
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
    args = ap.parse_args()

    cfg = SimConfig(peers=args.peers, model=args.model, dataset=args.dataset,
                    data_dir=args.data_dir, rule=args.rule, rounds=args.rounds,
                    malicious=args.malicious, attack=args.attack)
    fed = build_federation(cfg)
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


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
