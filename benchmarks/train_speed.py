"""Time train_clients: a loop of local_train vs. the vmap-batched path (docs/ml.md).

    .venv/bin/python benchmarks/train_speed.py --dataset mnist --data-dir ../shared/data/mnist \
        --model cnn --clients 50 --examples 1200 --epochs 1 --batch-size 32

Prints one row per method: seconds per round (best of --repeats, methods interleaved), clients
per second, and the relative difference ||U - U_first|| / ||U_first|| of the updates.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--examples", type=int, default=1200, help="examples per client")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--methods", default="loop,vmap,fork,fork-vmap")
    parser.add_argument("--workers", type=int, default=None, help="fork: worker processes")
    args = parser.parse_args()

    import numpy as np

    from phalanx.ml.data import load_dataset
    from phalanx.ml.models import count_parameters, make_model
    from phalanx.ml.train import (
        TrainConfig,
        choose_method,
        get_flat_params,
        set_torch_threads,
        train_clients,
    )

    threads = set_torch_threads(args.threads)
    ds = load_dataset(args.dataset, args.data_dir)
    n = args.clients * args.examples
    if n > ds.x_train.shape[0]:
        raise SystemExit(f"{args.clients} x {args.examples} > {ds.x_train.shape[0]} examples")
    shards = [
        (ds.x_train[i * args.examples : (i + 1) * args.examples],
         ds.y_train[i * args.examples : (i + 1) * args.examples])
        for i in range(args.clients)
    ]
    model = make_model(args.model, ds.input_shape, ds.num_classes, seed=0)
    start = get_flat_params(model)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size)
    seeds = list(range(args.clients))
    print(f"# {args.dataset} {args.model} d={count_parameters(model)} clients={args.clients} "
          f"examples={args.examples} epochs={args.epochs} batch={args.batch_size} "
          f"threads={threads} load average={os.getloadavg()[0]:.2f}")
    print(f"{'method':>9} {'s/round':>9} {'clients/s':>10} {'rel.diff':>10}")
    methods = args.methods.split(",")
    best = dict.fromkeys(methods, float("inf"))
    updates: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):  # interleaved, so a burst of load on the box hits every method
        for method in methods:
            t0 = time.perf_counter()
            updates[method] = train_clients(model, start, shards, cfg, seeds=seeds,
                                            method=method, workers=args.workers)
            best[method] = min(best[method], time.perf_counter() - t0)
    reference = updates[methods[0]]
    for method in methods:
        diff = float(np.linalg.norm(updates[method] - reference) / np.linalg.norm(reference))
        print(f"{method:>9} {best[method]:9.2f} {args.clients / best[method]:10.1f} {diff:10.2e}")
    print(f"auto picks: {choose_method(model, shards)}")

if __name__ == "__main__":
    main()
