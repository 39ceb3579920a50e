"""Milliseconds per SGD step of one client (batch 32, 28x28), NCHW vs channels-last (docs/ml.md).

    .venv/bin/python benchmarks/train_step.py --models cnn,cnn1m --threads 1
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="cnn,cnn1m")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch

    from phalanx.ml.models import make_model
    from phalanx.ml.train import set_torch_threads

    set_torch_threads(args.threads)
    print(f"# threads={args.threads} batch={args.batch_size} steps={args.steps} "
          f"load average={os.getloadavg()[0]:.2f}")
    print(f"{'model':>6} {'NCHW ms':>8} {'NHWC ms':>8}")
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch_size, 1, 28, 28, generator=generator)
    y = torch.randint(0, 10, (args.batch_size,), generator=generator)
    for name in args.models.split(","):
        row = [time_steps(make_model(name, (1, 28, 28), 10, seed=0), x, y, layout, args.steps)
               for layout in (torch.contiguous_format, torch.channels_last)]
        print(f"{name:>6} {row[0]:8.2f} {row[1]:8.2f}")


def time_steps(model, x, y, layout, steps: int) -> float:  # type: ignore[no-untyped-def]
    """Mean ms of one SGD-momentum step with ``model`` and ``x`` in memory ``layout``."""
    import torch
    import torch.nn.functional as F

    from phalanx.ml.train import set_memory_format

    set_memory_format(model, layout)
    xb = x.contiguous(memory_format=layout)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for i in range(5 + steps):
        if i == 5:
            t0 = time.perf_counter()
        opt.zero_grad()
        torch.autograd.backward(F.cross_entropy(model(xb), y))
        opt.step()
    return (time.perf_counter() - t0) / steps * 1e3

if __name__ == "__main__":
    main()
