"""What the projection rows cost a server (protocol.md §3.2 v1.1: k ≥ 64 rows), side by side.

Runs ``rules.secure.bench.run_bench`` (what ``phalanx bench mpc --json`` runs) at each row count
given, alternating, in one process, and prints one JSON line per run plus a summary. The rows
are passed by wrapping ``SecureParams`` (the CLI has no ``--rows`` option); counts below the
circuits' minimum of 64 only construct at commits before that minimum (2a281e9).

Usage: .venv/bin/python benchmarks/rows_cost.py [--rows 40,64] [--clients 200] [--dim 1000000]
       [--repeats 2]
"""

from __future__ import annotations

import argparse
import functools
import json

import phalanx.rules.secure.bench as bench
from phalanx.net.envelope import x25519_envelope
from phalanx.rules.secure.backend import SecureParams


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="40,64")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--dim", type=int, default=1_000_000)
    ap.add_argument("--rule", default="fltrust")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    counts = [int(r) for r in args.rows.split(",")]
    got: dict[int, list[dict[str, object]]] = {r: [] for r in counts}
    for _ in range(args.repeats):
        for rows in counts:
            bench.SecureParams = functools.partial(SecureParams, rows=rows)  # type: ignore[misc]
            out = bench.run_bench(args.rule, clients=args.clients, dim=args.dim, committee=5,
                                  threshold=1, envelope=x25519_envelope)
            out["rows"] = rows
            print(json.dumps(out, sort_keys=True), flush=True)
            got[rows].append(out)
    for rows, runs in got.items():
        per = [(r["server_s_max"], r["server_breakdown_s"]["compute"],  # type: ignore[index]
                r["server_over_plaintext"]) for r in runs]
        print(f"rows={rows}: " + "; ".join(
            f"server max {s:.3f} s, compute {c:.3f} s, {x:.2f}x warm plaintext" for s, c, x in per))


if __name__ == "__main__":
    main()
