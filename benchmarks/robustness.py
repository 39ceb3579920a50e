"""Robustness grid: every rule × every attack, iid and dirichlet(0.5); fills docs/results.md.

    .venv/bin/python benchmarks/robustness.py --data-dir ../shared/data/mnist

Defaults follow the issue: MNIST, cnn, 50 peers, 20% malicious (omniscient attackers). The number of
rounds and each peer's data budget are flags (the whole grid is 2 × 10 × 8 = 160 runs on a 2-core
machine); the values used are written into the report next to the tables.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from phalanx.rules import RULES
from phalanx.sim.config import SimConfig
from phalanx.sim.experiment import Cell, grid_title, markdown_table, run_grid

ATTACKS = ("none", "sign-flip", "scaling", "label-flip", "alie", "ipm", "min-max", "backdoor")
RULE_ORDER = ("fedavg", "fedavg-nb", "fltrust", "cc", "cc-iter", "rsa", "krum", "multi-krum",
              "median", "trimmed-mean")


def print_cell(c: Cell) -> None:
    asr = "" if c.attack_success_rate is None else f" asr={c.attack_success_rate:.3f}"
    print(f"{c.rule:>13} {c.attack:<11} acc={c.final_accuracy:.3f}{asr} ({c.wall_s:.1f} s)",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default="../shared/data/mnist")
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--peers", type=int, default=50)
    ap.add_argument("--malicious", type=float, default=0.2)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--samples-per-peer", type=int, default=200)
    ap.add_argument("--rules", default=",".join(RULE_ORDER))
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--partitions", default="iid,dirichlet")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/robustness"))
    ap.add_argument("--report", type=Path, default=Path("docs/results.md"))
    args = ap.parse_args()
    rules = args.rules.split(",")
    attacks = args.attacks.split(",")
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise SystemExit(f"--rules: unknown {unknown}")

    sections = []
    for part in args.partitions.split(","):
        base = SimConfig(dataset=args.dataset, data_dir=args.data_dir, model=args.model,
                         peers=args.peers, malicious=args.malicious, rounds=args.rounds,
                         samples_per_peer=args.samples_per_peer, partition=part, alpha=0.5,
                         seed=args.seed)
        start = time.perf_counter()
        cells = run_grid(base, rules, attacks, args.out / part, on_cell=print_cell)
        minutes = (time.perf_counter() - start) / 60
        sections.append(f"## {grid_title(base)}\n\n"
                        f"Final test accuracy after {args.rounds} rounds; for backdoor, (ASR) is "
                        f"the attack success rate. Grid time {minutes:.1f} min.\n\n"
                        + markdown_table(cells, rules, attacks))
        write_report(args, sections)


def write_report(args: argparse.Namespace, sections: list[str]) -> None:
    """Write what is done so far (one section per finished partition)."""
    command = ("python benchmarks/robustness.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
        if k not in ("out", "report")))
    header = ("# Robustness results\n\nProduced by:\n\n    " + command + "\n\n"
              "Settings: every peer proposes every round; attackers are omniscient; local "
              "training is 1 epoch of SGD (lr 0.05, momentum 0.9, batch 32) over each peer's "
              f"data budget of {args.samples_per_peer} examples; fltrust's root dataset is 100 "
              "examples held out of the training set. Rule parameters are the defaults of "
              "`phalanx.rules` (see docs/rules.md).\n\n")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(header + "\n".join(sections))
    print(f"wrote {args.report}", flush=True)


if __name__ == "__main__":
    main()
