"""Side by side: one round of Flower's SecAgg+ (FedAvg) against Phalanx's secure fltrust round.

Runs, in one invocation and one after the other (alternating the order on repeats):
  (a) the Flower harness ``../shared/bench/flower_secagg.py N D num_shares`` in its own venv
      (``.bench/flwr-venv``), parsing ``RESULT ... wall_s=..`` (server workflow time, Ray start-up
      excluded), optionally also in "plain" mode (FedAvg without secure aggregation);
  (b) ``.venv/bin/phalanx bench mpc --rule fltrust --clients N --dim D --committee M --threshold T
      --sharing S --json`` for each sharing mode S of ``--sharing`` (seeded and masked by default),
      parsing its last JSON line (``total_s``: clients and committee, whole round);
and prints a table and the ratio ours / Flower per mode (the target of issue 3 is <= 0.5). With
``--write-docs`` it replaces the measured section of docs/flower.md.

Not part of the test suite: it takes minutes and needs the Flower venv:

    python3 -m venv .bench/flwr-venv
    .bench/flwr-venv/bin/pip install "flwr[simulation]==1.42.0" numpy
    .venv/bin/python benchmarks/flower_compare.py --repeats 2 --plain --write-docs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FLOWER_SCRIPT = REPO.parent / "shared" / "bench" / "flower_secagg.py"
DEFAULT_FLOWER_PYTHON = REPO / ".bench" / "flwr-venv" / "bin" / "python"
DEFAULT_PHALANX = REPO / ".venv" / "bin" / "phalanx"
DOCS = REPO / "docs" / "flower.md"
BEGIN, END = "<!-- flower_compare:begin -->", "<!-- flower_compare:end -->"
RESULT_RE = re.compile(
    r"RESULT N=(?P<n>\d+) D=(?P<d>\d+) num_shares=(?P<k>\S+) rounds=(?P<r>\d+) wall_s=(?P<w>[\d.]+)"
)
FAILURES_RE = re.compile(r"received (?P<ok>\d+) results and (?P<bad>\d+) failures")


@dataclass
class Run:
    """One measured run: what ran, its main time, the process wall time and the load before."""

    system: str
    seconds: float
    process_s: float
    cpu_s: float
    load: tuple[float, float, float]
    extra: dict[str, object] = field(default_factory=dict)


def fail(message: str) -> NoReturn:
    print(f"flower_compare: {message}", file=sys.stderr)
    raise SystemExit(2)


def run_command(cmd: list[str], timeout: float) -> tuple[str, float, float]:
    """Output, wall seconds and CPU seconds of the whole process tree.

    CPU: user + sys of every descendant (Ray's raylet, GCS and workers included), sampled every
    0.2 s with psutil and taken at each process's last sample (so a lower bound, by at most the
    last 0.2 s of each process), or the reaped children's rusage if that is larger.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seen: dict[int, float] = {}
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=REPO)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            if time.perf_counter() - start > timeout:
                proc.kill()
                fail(f"timed out after {timeout:.0f} s: {' '.join(cmd)}")
            sample_cpu(root, seen)
            time.sleep(0.2)
        elapsed = time.perf_counter() - start
        out.seek(0)
        output = out.read()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        fail(f"exit {proc.returncode}: {' '.join(cmd)}\n{output[-3000:]}")
    return output, elapsed, max(reaped, sum(seen.values()))


def sample_cpu(root: psutil.Process, seen: dict[int, float]) -> None:
    """Record the latest own CPU seconds of ``root`` and each of its live descendants."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for p in procs:
        try:
            times = p.cpu_times()
        except psutil.Error:
            continue
        seen[p.pid] = times.user + times.system


def settle(args: argparse.Namespace) -> tuple[float, float, float]:
    """Wait (at most ``--settle`` seconds) until the 1-minute load is below 1, so that neither
    system starts while the previous run's processes (Ray's shut-down, our spool's write-back)
    still hold the cores; returns the load average it starts with."""
    deadline = time.monotonic() + args.settle
    while os.getloadavg()[0] >= 1.0 and time.monotonic() < deadline:
        time.sleep(2.0)
    return os.getloadavg()


def run_flower(args: argparse.Namespace, mode: str) -> Run:
    """The Flower harness; mode is an odd num_shares or "plain"."""
    load = settle(args)
    cmd = [str(args.flower_python), str(args.flower_script), str(args.clients), str(args.dim), mode]
    output, elapsed, cpu = run_command(cmd, args.timeout)
    match = RESULT_RE.search(output)
    if match is None:
        fail(f"no RESULT line from {' '.join(cmd)}\n{output[-3000:]}")
    counts = FAILURES_RE.search(output)
    # An even num_shares makes every client crash while the process still exits 0
    if counts is None or int(counts["bad"]) or int(counts["ok"]) != args.clients:
        fail(f"Flower round did not aggregate all {args.clients} clients:\n{output[-3000:]}")
    system = "flower-plain" if mode == "plain" else f"flower-secagg+ (num_shares={match['k']})"
    return Run(system, float(match["w"]), elapsed, cpu, load)


def run_ours(args: argparse.Namespace, sharing: str) -> Run:
    """``phalanx bench mpc ... --json``: the last line of output that parses as a JSON object."""
    load = settle(args)
    cmd = [
        str(args.phalanx), "bench", "mpc", "--rule", "fltrust",
        "--clients", str(args.clients), "--dim", str(args.dim),
        "--committee", str(args.committee), "--threshold", str(args.threshold),
        "--workers", str(args.workers), "--sharing", sharing, "--json",
    ]  # fmt: skip
    output, elapsed, cpu = run_command(cmd, args.timeout)
    record = None
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
    if not isinstance(record, dict) or "total_s" not in record:
        fail(f"no JSON line with total_s from {' '.join(cmd)}\n{output[-3000:]}")
    name = (f"phalanx fltrust {sharing} (m={args.committee}, t={args.threshold}, "
            f"workers={args.workers})")
    return Run(name, float(record["total_s"]), elapsed, cpu, load, extra=record)


def check_setup(args: argparse.Namespace) -> None:
    if not Path(args.flower_python).exists():
        fail(
            f"Flower venv missing ({args.flower_python}). Create it with:\n"
            "  python3 -m venv .bench/flwr-venv && "
            '.bench/flwr-venv/bin/pip install "flwr[simulation]==1.42.0" numpy'
        )
    if not Path(args.flower_script).exists():
        fail(f"Flower harness not found at {args.flower_script}; pass --flower-script PATH")
    if args.num_shares % 2 == 0:
        fail(f"num_shares={args.num_shares} must be odd (an even value crashes every client)")
    if not args.flower_only and not Path(args.phalanx).exists():
        fail(f"phalanx not found at {args.phalanx}; run `make setup` or pass --phalanx PATH")


def measure(args: argparse.Namespace) -> list[Run]:
    runs: list[Run] = []
    for i in range(args.repeats):
        steps: list[Callable[[], Run]] = [lambda: run_flower(args, str(args.num_shares))]
        if args.plain:
            steps.append(lambda: run_flower(args, "plain"))
        if not args.flower_only:
            ours = [lambda s=s: run_ours(args, s) for s in args.sharing.split(",")]
            steps = ours + steps if i % 2 else steps + ours
        for step in steps:
            run = step()
            print(f"  {run.system}: {run.seconds:.2f} s (load {run.load[0]:.2f})", flush=True)
            runs.append(run)
    return runs


def summarize(runs: list[Run]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.system, []).append(run)
    return groups


def render(args: argparse.Namespace, runs: list[Run]) -> str:
    groups = summarize(runs)
    lines = [
        f"Measured from {args.started:%Y-%m-%d %H:%M} UTC, N={args.clients} clients, "
        f"d={args.dim}, {args.repeats} repeat(s), {os.cpu_count()} cores.",
        "",
        "| system | median s | runs s | process wall s | process CPU s | load (1 min) before |",
        "|---|---:|---|---|---|---|",
    ]
    for system, group in groups.items():
        times = ", ".join(f"{r.seconds:.2f}" for r in group)
        walls = ", ".join(f"{r.process_s:.1f}" for r in group)
        cpus = ", ".join(f"{r.cpu_s:.1f}" for r in group)
        loads = ", ".join(f"{r.load[0]:.2f}" for r in group)
        median = statistics.median(r.seconds for r in group)
        lines.append(f"| {system} | {median:.2f} | {times} | {walls} | {cpus} | {loads} |")
    secagg = [g for s, g in groups.items() if s.startswith("flower-secagg")]
    ours = [g for s, g in groups.items() if s.startswith("phalanx")]
    if secagg:
        flower_s = statistics.median(r.seconds for r in secagg[0])
        for group in ours:
            ours_s = statistics.median(r.seconds for r in group)
            verdict = "meets" if ours_s <= 0.5 * flower_s else "misses"
            lines += [
                "",
                f"Ratio {group[0].system} / Flower SecAgg+ = {ours_s:.2f} / {flower_s:.2f} = "
                f"**{ours_s / flower_s:.2f}** ({verdict} the target <= 0.5).",
            ]
    for group in ours:
        detail = {k: v for k, v in group[-1].extra.items() if k != "total_s"}
        if detail:
            lines += ["", f"Last record of {group[0].system}: `{json.dumps(rounded(detail))}`"]
    lines += ["", "Command:", "", f"    .venv/bin/python benchmarks/flower_compare.py {args.argv}"]
    return "\n".join(lines)


def rounded(value: object) -> object:
    """Floats to 4 significant digits, recursively, for a readable record."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def write_docs(section: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else ""
    block = f"{BEGIN}\n{section}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Latest side-by-side measurement\n\n" + block + "\n"
    DOCS.write_text(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--dim", type=int, default=1_000_000)
    p.add_argument("--num-shares", type=int, default=15, help="Flower SecAgg+ shares (odd)")
    p.add_argument("--committee", type=int, default=5)
    p.add_argument("--threshold", type=int, default=1)
    p.add_argument("--workers", type=int, default=2,
                   help="threads for our simulated parties (Flower's Ray uses both cores too)")
    p.add_argument("--sharing", default="seeded,masked",
                   help="our sharing modes to run, comma-separated (seeded, masked)")
    p.add_argument("--repeats", type=int, default=1, help="alternate the order on each repeat")
    p.add_argument("--plain", action="store_true", help="also run Flower's plain FedAvg")
    p.add_argument("--flower-only", action="store_true", help="skip phalanx (not ready yet)")
    p.add_argument("--flower-script", type=Path, default=DEFAULT_FLOWER_SCRIPT)
    p.add_argument("--flower-python", type=Path, default=DEFAULT_FLOWER_PYTHON)
    p.add_argument("--phalanx", type=Path, default=DEFAULT_PHALANX)
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds per run")
    p.add_argument("--settle", type=float, default=90.0,
                   help="before each run, wait up to this long for the 1-min load to drop below 1")
    p.add_argument("--write-docs", action="store_true", help=f"update the section in {DOCS.name}")
    args = p.parse_args(argv)
    args.argv = " ".join(argv)
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    args.started = datetime.now(UTC)
    check_setup(args)
    runs = measure(args)
    section = render(args, runs)
    print(section)
    if args.write_docs:
        write_docs(section)
        print(f"updated {DOCS}")


if __name__ == "__main__":
    main(sys.argv[1:])
