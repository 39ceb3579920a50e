"""Why secure and plaintext fltrust end apart on MNIST (issue 12; docs/results.md, "Secure vs
plaintext fltrust on MNIST").

One federation (the results.md configuration at ``--seed``), played side by side in one process:

- ``plain``: the plaintext rule;
- ``secure``: the committee MPC (m = 5, t = 1, automatic frac_bits, OS secrets). Every round the
  plaintext rule also aggregates the *same* prepared inputs, so the MPC's own error is measured
  on each round's inputs (relative L2 error of the aggregate, the revealed trust-weight sum
  against the plaintext one), apart from where the trajectory goes;
- ``plain+noise`` (``--noise-runs`` of them): the plaintext rule with each round's aggregate
  perturbed by a random Gaussian direction of relative norm ``--noise`` (default: the secure
  run's median relative error), i.e. a perturbation as large as the MPC's but unbiased.

If the plain+noise runs spread as far from ``plain`` as ``secure`` does, the gap is the
trajectory's sensitivity to any perturbation of that size, not a bias of the MPC.

    PYTHONPATH=src .venv/bin/python benchmarks/secure_gap.py --seed 2 \
        --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from phalanx.rules import make_rule
from phalanx.sim.config import SimConfig
from phalanx.sim.federation import (
    AggregateOutcome,
    build_federation,
    load_sim_dataset,
    run_round,
)


def base_config(args: argparse.Namespace) -> SimConfig:
    """docs/results.md's configuration, plaintext without a ledger."""
    return SimConfig(dataset=args.dataset, data_dir=args.data_dir, model=args.model,
                     peers=args.peers, malicious=0.3, attack="sign-flip", rule="fltrust",
                     rounds=args.rounds, samples_per_peer=args.samples_per_peer, local_epochs=3,
                     batch_size=20, lr=0.1, seed=args.seed, secure=False, ledger="none")


def play(cfg: SimConfig, data: Any, *, compare: bool = False, noise: float = 0.0,
         noise_seed: int = 0) -> dict[str, Any]:
    """Accuracy per round; with ``compare`` the MPC's error per round; with ``noise`` a
    perturbed plaintext aggregate."""
    fed = build_federation(cfg, data)
    plain_rule = make_rule(cfg.rule, secure=False, **dict(cfg.rule_params))
    inner = fed.aggregate_fn
    errors: list[float] = []
    trust: list[tuple[float, float]] = []
    rng = np.random.default_rng([noise_seed, 99])

    def aggregate(rule: Any, inputs: Any, ctx: Any, rnd: int,
                  ids: Sequence[int] | None = None) -> AggregateOutcome:
        outcome = inner(rule, inputs, ctx, rnd, ids)
        vec = outcome.aggregate.vector
        if compare:
            ref = plain_rule.aggregate(inputs, ctx)
            errors.append(float(np.linalg.norm(vec.astype(np.float64) - ref.vector)
                                / max(np.linalg.norm(ref.vector), 1e-30)))
            trust.append((float(outcome.aggregate.revealed.get("trust_weight_sum", np.nan)),
                          float(ref.revealed.get("trust_weight_sum", np.nan))))
        if noise:
            direction = rng.standard_normal(vec.size)
            direction *= noise * np.linalg.norm(vec) / np.linalg.norm(direction)
            outcome = AggregateOutcome(dataclasses.replace(
                outcome.aggregate, vector=(vec + direction).astype(np.float32)), outcome.extra)
        return outcome

    fed.aggregate_fn = aggregate
    start = time.perf_counter()
    acc = [run_round(fed, rnd).accuracy for rnd in range(1, cfg.rounds + 1)]
    out: dict[str, Any] = {"accuracy": acc, "seconds": time.perf_counter() - start}
    if compare:
        out["relative_error"] = errors
        out["trust_weight_sum"] = trust
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default="../shared/data/mnist")
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--peers", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--samples-per-peer", type=int, default=100)
    ap.add_argument("--noise", type=float, default=None,
                    help="relative perturbation of plain+noise (default: secure's median error)")
    ap.add_argument("--noise-runs", type=int, default=2)
    ap.add_argument("--first-noise-seed", type=int, default=0)
    ap.add_argument("--no-plain", action="store_true",
                    help="skip the plaintext run (deterministic: compare with an earlier one)")
    ap.add_argument("--no-secure", action="store_true",
                    help="skip the secure run (then --noise is required)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    cfg = base_config(args)
    data = load_sim_dataset(cfg)
    runs: dict[str, dict[str, Any]] = {}

    def show(name: str, run: dict[str, Any]) -> None:
        runs[name] = run
        print(f"{name:14s} {run['seconds']:6.1f} s  final {run['accuracy'][-1]:.4f}  "
              + " ".join(f"{a:.3f}" for a in run["accuracy"]), flush=True)

    if args.no_secure and args.noise is None:
        raise SystemExit("--no-secure needs --noise")
    if not args.no_plain:
        show("plain", play(cfg, data))
    noise = args.noise
    if not args.no_secure:
        secure = play(cfg.replace(secure=True), data, compare=True)
        show("secure", secure)
        err = secure["relative_error"]
        print("secure relative error per round: " + " ".join(f"{e:.1e}" for e in err))
        print("trust-weight sum secure/plain per round: " + " ".join(
            f"{s:.4f}/{p:.4f}" for s, p in secure["trust_weight_sum"]))
        noise = noise if noise is not None else statistics.median(err)
    assert noise is not None
    first = args.first_noise_seed
    for k in range(first, first + args.noise_runs):
        show(f"plain+noise{k}", play(cfg, data, noise=noise, noise_seed=k))
    finals = {name: r["accuracy"][-1] for name, r in runs.items()}
    if "plain" in finals:
        print(f"noise {noise:.1e}; final accuracy minus plain: " + ", ".join(
            f"{n} {a - finals['plain']:+.4f}" for n, a in finals.items() if n != "plain"))
    if args.json:
        print(json.dumps({"seed": args.seed, "noise": noise, "runs": runs}))


if __name__ == "__main__":
    main()
