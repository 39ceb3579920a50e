"""Robustness grid: every rule × every attack, iid and dirichlet(0.5); fills docs/results.md.

    .venv/bin/python benchmarks/robustness.py --data-dir ../shared/data/mnist

Defaults follow the issue: MNIST, cnn, 50 peers, 20% malicious (omniscient attackers). The number of
rounds and each peer's data budget are flags (the whole grid is 2 × 10 × 8 = 160 runs on a 2-core
machine); the values used are written into the report next to the tables. The report is rewritten
after every cell, so an interrupted grid still leaves the cells it finished (others shown as ·).
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default="../shared/data/mnist")
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--peers", type=int, default=50)
    ap.add_argument("--malicious", type=float, default=0.2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--samples-per-peer", type=int, default=100)
    ap.add_argument("--local-epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--rules", default=",".join(RULE_ORDER))
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--partitions", default="iid,dirichlet")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/robustness"))
    ap.add_argument("--report", type=Path, default=Path("docs/results.md"))
    args = ap.parse_args()
    rules, attacks = args.rules.split(","), args.attacks.split(",")
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise SystemExit(f"--rules: unknown {unknown}")

    done: dict[str, list[Cell]] = {}
    bases = {part: SimConfig(dataset=args.dataset, data_dir=args.data_dir, model=args.model,
                             peers=args.peers, malicious=args.malicious, rounds=args.rounds,
                             samples_per_peer=args.samples_per_peer, partition=part, alpha=0.5,
                             local_epochs=args.local_epochs, batch_size=args.batch_size,
                             lr=args.lr, seed=args.seed, secure=False, ledger="none")
             for part in args.partitions.split(",")}
    start = time.perf_counter()

    def on_cell(part: str, cells: list[Cell]) -> None:
        c = cells[-1]
        asr = "" if c.attack_success_rate is None else f" asr={c.attack_success_rate:.3f}"
        print(f"{part:>9} {c.rule:>13} {c.attack:<11} acc={c.final_accuracy:.3f}{asr} "
              f"({c.wall_s:.1f} s)", flush=True)
        done[part] = list(cells)
        write_report(args, bases, done, rules, attacks, (time.perf_counter() - start) / 60)

    for part, base in bases.items():
        run_grid(base, rules, attacks, args.out / part,
                 on_cell=lambda cells, part=part: on_cell(part, cells))
    print(f"wrote {args.report}", flush=True)


def write_report(args: argparse.Namespace, bases: dict[str, SimConfig],
                 done: dict[str, list[Cell]], rules: list[str], attacks: list[str],
                 minutes: float) -> None:
    """The report with every cell finished so far."""
    command = "python benchmarks/robustness.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("out", "report"))
    budget = (f"each peer's data budget of {args.samples_per_peer} examples"
              if args.samples_per_peer else "all of each peer's partition")
    total = len(bases) * len(rules) * len(attacks)
    finished = sum(len(c) for c in done.values())
    lines = [
        "# Robustness results", "",
        "Produced by (the cells below are final test accuracies; for backdoor, ASR is the attack "
        "success rate):", "", "    " + command, "",
        f"Cells finished: {finished}/{total} after {minutes:.1f} min (· = not run).", "",
        "Settings: every peer proposes every round; attackers are omniscient; local training is "
        f"{args.local_epochs} epoch(s) of SGD (lr {args.lr}, momentum 0.9, "
        f"batch {args.batch_size}) "
        f"over {budget}; fltrust's root "
        "dataset is 100 examples held out of the training set; sign-flip sends −4·g. Rule "
        "parameters are the defaults of `phalanx.rules` (docs/rules.md).", "",
    ]
    for part, base in bases.items():
        cells = done.get(part, [])
        lines += [f"## {grid_title(base)}", "", markdown_table(cells, rules, attacks)]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
