"""Seconds per round by phase and peak memory, in-process vs Ray (issue 14; docs/scale.md).

    PYTHONPATH=src .venv/bin/python benchmarks/scale.py --backend inprocess --peers 100
    PYTHONPATH=src .venv/bin/python benchmarks/scale.py --backend ray --ray-cpus 2 --peers 100

Plays ``--rounds`` whole simulator rounds (secure fltrust by default, cnn1m on MNIST, each peer's
data capped so that training is not the whole story) and prints one JSON line per round (the
phases of ``RoundMetrics.seconds``) and a last line with the peak memory: the proportional set
size (PSS: shared pages split between the processes mapping them, so Ray's shared-memory
object store is counted once) summed over this process and all its descendants (the local Ray
instance's GCS, raylet and workers), sampled every ``--sample-s`` seconds.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import psutil

from phalanx.sim.config import SimConfig
from phalanx.sim.run import make_round_player


def tree_pss() -> int:
    """PSS bytes of this process and its descendants (RSS where PSS is unreadable)."""
    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


class PeakSampler(threading.Thread):
    """The largest :func:`tree_pss` seen while running."""

    def __init__(self, every: float) -> None:
        super().__init__(daemon=True)
        self.every, self.peak, self.stop = every, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_pss())
            self.stop.wait(self.every)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backend", default="inprocess", choices=("inprocess", "ray"))
    ap.add_argument("--ray-cpus", type=int, default=0)
    ap.add_argument("--ray-address", default=None)
    ap.add_argument("--peers", type=int, default=100)
    ap.add_argument("--model", default="cnn1m")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default="../shared/data/mnist")
    ap.add_argument("--rule", default="fltrust")
    ap.add_argument("--plaintext", action="store_true", help="no MPC (default: secure)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--samples-per-peer", type=int, default=60)
    ap.add_argument("--local-epochs", type=int, default=1)
    ap.add_argument("--sample-s", type=float, default=1.0)
    args = ap.parse_args()

    ray_opts = dict(backend=args.backend, ray_cpus=args.ray_cpus if args.backend == "ray" else 0,
                    ray_address=args.ray_address)
    cfg = SimConfig(peers=args.peers, model=args.model, dataset=args.dataset,
                    data_dir=args.data_dir, rule=args.rule, rounds=args.rounds,
                    secure=not args.plaintext, reproducible_secrets=not args.plaintext,
                    ledger="none",
                    samples_per_peer=args.samples_per_peer, local_epochs=args.local_epochs,
                    **ray_opts)
    sampler = PeakSampler(args.sample_s)
    sampler.start()
    start = time.perf_counter()
    play = make_round_player(cfg)
    setup_s = time.perf_counter() - start
    try:
        for rnd in range(1, cfg.rounds + 1):
            t0 = time.perf_counter()
            m = play(rnd)
            row = {"backend": args.backend, "round": rnd, "total_s": time.perf_counter() - t0,
                   "accuracy": m.accuracy,
                   "seconds": {k: round(v, 2) for k, v in m.seconds.items()},
                   "mpc_phase_s": {k: round(v, 2) for k, v in
                                   m.extra.get("phase_s", {}).items()}}
            print(json.dumps(row), flush=True)
    finally:
        peak = max(sampler.peak, tree_pss())
        play.fed.executor.close()
        sampler.stop.set()
    print(json.dumps({"backend": args.backend, "peers": args.peers, "setup_s": round(setup_s, 1),
                      "peak_pss_mb": round(peak / 2**20)}), flush=True)


if __name__ == "__main__":
    main()
