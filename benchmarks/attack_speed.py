"""Time craft_updates for each model attack on cnn1m-sized updates (docs/ml.md).

    .venv/bin/python benchmarks/attack_speed.py --honest 40 --malicious 10 --dim 1260554
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--honest", type=int, default=40)
    parser.add_argument("--malicious", type=int, default=10)
    parser.add_argument("--dim", type=int, default=1_260_554)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import numpy as np

    from phalanx.attacks.poisoning import Attack, AttackSpec, craft_updates

    rng = np.random.default_rng(0)
    honest = (0.01 * rng.standard_normal((args.honest, args.dim))).astype(np.float32)
    own = (0.01 * rng.standard_normal((args.malicious, args.dim))).astype(np.float32)
    print(f"# honest={args.honest} malicious={args.malicious} d={args.dim} (omniscient)")
    print(f"{'attack':>10} {'seconds':>8}")
    for attack in (Attack.SIGN_FLIP, Attack.SCALING, Attack.GAUSSIAN, Attack.ALIE, Attack.IPM,
                   Attack.MIN_MAX, Attack.FREE_RIDER):
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            craft_updates(AttackSpec(attack), own, honest, rng=rng)
            best = min(best, time.perf_counter() - t0)
        print(f"{attack.value:>10} {best:8.3f}")


if __name__ == "__main__":
    main()
