"""Grid benchmark of the secure aggregation: each point is one `phalanx bench mpc --json` process.

Usage:
    .venv/bin/python benchmarks/mpc.py --target            # the target point only
    .venv/bin/python benchmarks/mpc.py --grid reduced      # n ∈ {50,100,200}, d = 1e5, all rules
    .venv/bin/python benchmarks/mpc.py --grid full         # + d = 1e6 (slow on 2 cores)
Results are appended as JSON lines to benchmarks/results/mpc.jsonl and printed as a table.
A fresh process per point makes the peak RSS of each point its own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "mpc.jsonl"
RULES = ("fedavg-nb", "cc", "rsa", "fltrust")
COMMITTEES = ((4, 1), (5, 1), (9, 2))


def run_point(rule: str, n: int, d: int, m: int, t: int, sharing: str,
              timeout: float) -> dict[str, object]:
    cmd = [str(ROOT / ".venv" / "bin" / "phalanx"), "bench", "mpc", "--rule", rule,
           "--clients", str(n), "--dim", str(d), "--committee", str(m), "--threshold", str(t),
           "--sharing", sharing, "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        return {"rule": rule, "clients": n, "dim": d, "committee": m, "threshold": t,
                "sharing": sharing, "error": proc.stderr.strip().splitlines()[-1:] or ["?"]}
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t0
    out["command"] = " ".join(cmd[1:])
    return out


def head(r: dict[str, object]) -> str:
    return (f"{r['rule']:9} n={r['clients']:<4} d={r['dim']:<8} "
            f"({r['committee']},{r['threshold']}) {r.get('sharing', 'seeded'):6}")


def row(r: dict[str, object]) -> str:
    if "error" in r:
        return f"{head(r)} ERROR {r['error']}"
    return (f"{head(r)} plain {r['plaintext_s']:.3f}s  server max {r['server_s_max']:.3f}s "
            f"({r['server_over_plaintext']:.2f}x)  upload {r['upload_over_float32']:.2f}x  "
            f"rss {r['peak_rss_mb']:.0f}/{r['peak_rss_secure_mb']:.0f} MiB  "
            f"err {r['max_abs_error']:.2g}")


def markdown(rows: list[dict[str, object]]) -> str:
    """The grid as a markdown table (the last result per point wins)."""
    last: dict[tuple[object, ...], dict[str, object]] = {}
    for r in rows:
        last[(r["rule"], r["clients"], r["dim"], r["committee"], r["threshold"],
              r.get("sharing", "seeded"))] = r
    out = ["| rule | n | d | (m,t) | sharing | plaintext CPU s cold / warm | server CPU s (max) | "
           "ratio cold / warm | client CPU s (witness/share/seal) | upload ×f32 | "
           "RSS secure / total MiB | max err (bound) |", "|" + "---|" * 12]
    for key in sorted(last, key=lambda k: (k[2], k[5], k[0], k[1], k[3])):
        r = last[key]
        if "error" in r:
            out.append(f"| {' | '.join(str(v) for v in key[:3])} | ({key[3]},{key[4]}) | "
                       f"{key[5]} | error: {r['error']} |" + " |" * 7)
            continue
        cs = r["client_s"]
        runs = r.get("plaintext_cpu_runs_s")
        if not isinstance(cs, dict):
            continue
        cold = float(runs[0]) if isinstance(runs, list) else float(str(r["plaintext_cpu_s"]))
        warm = f"{min(runs):.3f}" if isinstance(runs, list) else "—"
        server = float(str(r["server_s_max"]))
        warm_ratio = f"{server / min(runs):.2f}" if isinstance(runs, list) else "—"
        out.append(
            f"| {r['rule']} | {r['clients']} | {r['dim']:.0e} | ({r['committee']},{r['threshold']})"
            f" | {r.get('sharing', 'seeded')} | {cold:.3f} / {warm} | "
            f"{server:.3f} | {server / cold:.2f} / {warm_ratio} | "
            f"{cs['witness']:.4f}/{cs['share']:.4f}/{cs['seal']:.4f} | "
            f"{r['upload_over_float32']:.2f} | {r['peak_rss_secure_mb']:.0f} / "
            f"{r['peak_rss_mb']:.0f} | {r['max_abs_error']:.1e} ({r['error_bound']:.1e}) |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--grid", choices=("reduced", "full"), default=None)
    ap.add_argument("--target", action="store_true")
    ap.add_argument("--sharing", choices=("seeded", "masked"), default="seeded")
    ap.add_argument("--dims", default=None, help="comma-separated d values (overrides --grid)")
    ap.add_argument("--clients", default="50,100,200")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--table", action="store_true", help="print results/mpc.jsonl as markdown")
    args = ap.parse_args()
    if args.table:
        print(markdown([json.loads(line) for line in OUT.read_text().splitlines() if line]))
        return
    points: list[tuple[str, int, int, int, int, str]] = []
    if args.target:
        points.append(("fltrust", 200, 1_000_000, 5, 1, args.sharing))
    if args.grid or args.dims:
        dims = ((100_000,) if args.grid == "reduced" else (100_000, 1_000_000))
        if args.dims:
            dims = tuple(int(v) for v in args.dims.split(","))
        ns = tuple(int(v) for v in args.clients.split(","))
        for d, n, (m, t), rule in itertools.product(dims, ns, COMMITTEES, RULES):
            points.append((rule, n, d, m, t, args.sharing))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as fh:
        for p in points:
            r = run_point(*p, timeout=args.timeout)
            fh.write(json.dumps(r, sort_keys=True) + "\n")
            fh.flush()
            print(row(r), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
