"""Committee-size grid of the secure aggregation (issue 13): per-server CPU, per-client CPU,
upload per client and committee memory as m and t grow.

Usage (inside a worktree, PYTHONPATH=src so the tree's code runs):
    PYTHONPATH=src python benchmarks/committee_scale.py --clients 100 --dims 100000,1000000 \
        --rules fltrust,cc --committees 5:1,13:4,31:10,64:21 --timeout 600
Each point is one fresh process (``--point``) so its peak RSS is its own; a point that does not
finish within ``--timeout`` seconds is reported as a timeout. Results are appended as JSON lines
to benchmarks/results/committee_scale.jsonl and printed as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "committee_scale.jsonl"


def point(rule: str, n: int, d: int, m: int, t: int, sharing: str, zero: str) -> dict[str, object]:
    """One aggregation in this process (what ``--point`` runs)."""
    from phalanx.net.envelope import x25519_envelope
    from phalanx.rules.secure.bench import run_bench

    kw = {} if zero == "default" else {"zero": zero}
    return run_bench(rule, clients=n, dim=d, committee=m, threshold=t,
                     envelope=x25519_envelope, sharing=sharing, **kw)


def run_point(rule: str, n: int, d: int, m: int, t: int, sharing: str, zero: str,
              timeout: float) -> dict[str, object]:
    """One point in a fresh process; a timeout or a crash becomes an ``error`` row."""
    cmd = [sys.executable, __file__, "--point", f"{rule},{n},{d},{m},{t},{sharing},{zero}"]
    base: dict[str, object] = {"rule": rule, "clients": n, "dim": d, "committee": m,
                               "threshold": t, "sharing": sharing, "zero": zero,
                               "command": " ".join(cmd[1:])}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    except subprocess.TimeoutExpired:
        return {**base, "error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {**base, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**base, **out, "wall_s": time.perf_counter() - t0}


def table_row(r: dict[str, object]) -> str:
    head = (f"| {r['rule']} | {r['clients']} | {r['dim']} | ({r['committee']}, {r['threshold']})"
            f" | {r.get('sharing')} | {r.get('zero', 'default')} |")
    if "error" in r:
        return f"{head} {r['error']} | | | | |"
    client = sum(float(v) for v in r["client_s"].values())  # type: ignore[union-attr]
    return (f"{head} {r['server_s_max']:.2f} | {client:.3f} | "
            f"{r['upload_over_float32']:.2f}× | {r['peak_rss_secure_mb']:.0f} | "
            f"{r['wall_s']:.0f} |")


HEADER = ("| rule | n | d | (m, t) | sharing | zero sharing | server CPU s (max) | "
          "client CPU s (mean) | upload / float32 | peak RSS MiB | wall s |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--point", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--rules", default="fltrust,cc")
    ap.add_argument("--clients", default="100")
    ap.add_argument("--dims", default="100000,1000000")
    ap.add_argument("--committees", default="5:1,13:4,31:10,64:21")
    ap.add_argument("--sharing", default="seeded")
    ap.add_argument("--zero", default="default", help="default, cdi, dealt or auto")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    if args.point:
        rule, n, d, m, t, sharing, zero = args.point.split(",")
        print(json.dumps(point(rule, int(n), int(d), int(m), int(t), sharing, zero)))
        return
    print(HEADER)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for d in (int(x) for x in args.dims.split(",")):
        for rule in args.rules.split(","):
            for n in (int(x) for x in args.clients.split(",")):
                for mt in args.committees.split(","):
                    m, t = (int(x) for x in mt.split(":"))
                    r = run_point(rule, n, d, m, t, args.sharing, args.zero, args.timeout)
                    with OUT.open("a") as f:
                        f.write(json.dumps(r) + "\n")
                    print(table_row(r), flush=True)


if __name__ == "__main__":
    main()
