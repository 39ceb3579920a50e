"""Seconds per round by phase and peak memory, in-process vs Ray (issue 14; docs/scale.md).

    PYTHONPATH=src .venv/bin/python benchmarks/scale.py --alternate --peers-list 100,200 \
        --ledger model --proposers 20 --rounds 1 --ray-cpus 2

``--alternate`` runs one child process per (peers, backend), alternating the backends
(in-process, Ray, Ray, in-process, ...) so that both see the same load, and prints each
child's lines, then a markdown table. A child (``--backend inprocess|ray``) plays ``--rounds``
whole simulator rounds (secure fltrust by default, cnn1m on MNIST, each peer's data capped so
that training is not the whole story; ``--ledger model``: the per-peer protocol, whose steps
run on Ray actors with ``--backend ray``) and prints one JSON line per round (the phases of
``RoundMetrics.seconds``) and a last line with the peak memory: the proportional set size (PSS:
shared pages split between the processes mapping them, so Ray's shared-memory object store is
counted once) summed over this process and all its descendants (the local Ray instance's GCS,
raylet and workers), sampled every ``--sample-s`` seconds, and the 1-minute load average
(min, mean, max over the same samples).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import psutil

from phalanx.sim.config import SimConfig
from phalanx.sim.run import make_round_player


def tree_pss() -> int:
    """PSS bytes of this process and its descendants (RSS where PSS is unreadable).

    Read from ``/proc/<pid>/smaps_rollup``: psutil's ``memory_full_info`` walks every mapping
    of ``smaps`` under the process's memory lock, which stalled a 7 GB simulator by seconds
    every sample (its driver-only phases ran several times slower than the same code in the
    Ray run)."""
    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            total += rollup_pss(proc.pid)
        except OSError:
            try:
                total += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return total


def rollup_pss(pid: int) -> int:
    """The PSS line of ``/proc/<pid>/smaps_rollup``, in bytes."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no Pss in /proc/{pid}/smaps_rollup")


class PeakSampler(threading.Thread):
    """The largest :func:`tree_pss` seen while running."""

    def __init__(self, every: float) -> None:
        super().__init__(daemon=True)
        self.every, self.peak, self.stop = every, 0, threading.Event()
        self.loads: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_pss())
            self.loads.append(os.getloadavg()[0])
            self.stop.wait(self.every)


PHASES = ("chain", "train", "attack", "reference", "propose", "respond", "aggregate", "vote",
          "evaluate")


def alternate(args: argparse.Namespace, passthrough: list[str]) -> None:
    """One child per (peers, backend), the backends alternating; then a markdown table."""
    rows: list[dict[str, Any]] = []
    flip = False
    for peers in [int(p) for p in args.peers_list.split(",")]:
        order = ["inprocess", "ray"][::-1] if flip else ["inprocess", "ray"]
        flip = not flip
        for backend in order:
            cmd = [sys.executable, __file__, "--backend", backend, "--peers", str(peers),
                   *passthrough]
            print("#", " ".join(cmd[1:]), flush=True)
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True) as child:
                assert child.stdout is not None
                for x in child.stdout:  # streamed: a child stopped early keeps its rounds
                    if x.startswith("{"):
                        print(x.strip(), flush=True)
                        rows.append({**json.loads(x), "peers": peers})
            if child.returncode:
                print(f"# {backend} {peers}: exit {child.returncode}", flush=True)
    print(table(rows))


def table(rows: list[dict[str, Any]]) -> str:
    """Seconds by phase per round, and setup / peak memory / load per child."""
    out = ["| peers, backend, round | " + " | ".join(PHASES) + " | round |",
           "|---|" + "---:|" * (len(PHASES) + 1)]
    for r in rows:
        if "round" in r:
            sec = r["seconds"]
            out.append(f"| {r['peers']}, {r['backend']}, {r['round']} | "
                       + " | ".join(f"{sec.get(p, 0.0):.1f}" for p in PHASES)
                       + f" | {r['total_s']:.1f} |")
    out += ["", "| peers, backend | setup s | peak PSS GB | load (min / mean / max) |",
            "|---|---:|---:|---|"]
    for r in rows:
        if "peak_pss_mb" in r:
            out.append(f"| {r['peers']}, {r['backend']} | {r['setup_s']:.1f} | "
                       f"{r['peak_pss_mb'] / 1024:.2f} | {r['load']} |")
    return "\n".join(out)


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
    ap.add_argument("--ledger", default="none", help="model: the per-peer protocol")
    ap.add_argument("--proposers", type=int, default=0, help="per round (0: all but the roles)")
    ap.add_argument("--voters", type=int, default=2, help="with --ledger")
    ap.add_argument("--alternate", action="store_true",
                    help="children alternating in-process and Ray for each of --peers-list")
    ap.add_argument("--peers-list", default="100,200")
    args = ap.parse_args()
    if args.alternate:
        child = {k: v for k, v in vars(args).items()
                 if k not in ("alternate", "peers_list", "backend", "peers", "plaintext")
                 and v is not None}
        passthrough = [x for k, v in child.items() for x in (f"--{k.replace('_', '-')}", str(v))]
        alternate(args, passthrough + (["--plaintext"] if args.plaintext else []))
        return

    ray_opts = dict(backend=args.backend, ray_cpus=args.ray_cpus if args.backend == "ray" else 0,
                    ray_address=args.ray_address)
    cfg = SimConfig(peers=args.peers, model=args.model, dataset=args.dataset,
                    data_dir=args.data_dir, rule=args.rule, rounds=args.rounds,
                    secure=not args.plaintext, reproducible_secrets=not args.plaintext,
                    samples_per_peer=args.samples_per_peer, local_epochs=args.local_epochs,
                    ledger=args.ledger, proposers=args.proposers,
                    **({"voters": args.voters} if args.ledger != "none" else {}), **ray_opts)
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
                   "accuracy": m.accuracy, "accepted": m.accepted,
                   "stands": m.extra.get("ledger", {}).get("stands"),
                   "result_accepted": m.extra.get("ledger", {}).get("accepted"),
                   "seconds": {k: round(v, 2) for k, v in m.seconds.items()},
                   "mpc_phase_s": {k: round(v, 2) for k, v in
                                   m.extra.get("phase_s", {}).items()}}
            print(json.dumps(row), flush=True)
    finally:
        peak = max(sampler.peak, tree_pss())
        play.fed.executor.close()
        sampler.stop.set()
    loads = sampler.loads or [os.getloadavg()[0]]
    print(json.dumps({"backend": args.backend, "peers": args.peers, "setup_s": round(setup_s, 1),
                      "peak_pss_mb": round(peak / 2**20),
                      "load": f"{min(loads):.1f} / {sum(loads) / len(loads):.1f} / "
                              f"{max(loads):.1f}"}), flush=True)


if __name__ == "__main__":
    main()
