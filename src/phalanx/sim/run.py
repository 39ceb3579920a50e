"""A simulation run and its directory: resolved config, per-round metrics, summary and plot.

Layout of a run directory::

    config.toml     the resolved configuration (re-runnable with --config)
    metrics.jsonl   one JSON object per round (accuracy, loss, ASR, per-phase seconds, rejections)
    summary.json    final and best accuracy, totals, wall time
    accuracy.png    test accuracy (and ASR, for backdoor runs) per round
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phalanx.ml.data import Dataset
from phalanx.sim.config import SimConfig, dump_toml
from phalanx.sim.federation import RoundMetrics, build_federation, run_round

OnRound = Callable[[RoundMetrics], None]


def default_run_dir(cfg: SimConfig, root: Path = Path("runs")) -> Path:
    """``runs/<dataset>-<rule>-<attack>-s<seed>-<timestamp>`` (unique per second and config)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / f"{cfg.dataset}-{cfg.rule}-{cfg.attack}-s{cfg.seed}-{stamp}"


def simulate(cfg: SimConfig, out_dir: Path, on_round: OnRound | None = None,
             data: Dataset | None = None) -> dict[str, Any]:
    """Run ``cfg.rounds`` rounds, writing the run directory as it goes; returns the summary.

    ``data``: an already loaded dataset to use instead of loading ``cfg.dataset``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.toml").write_text(dump_toml(cfg.to_dict()))
    start = time.perf_counter()
    play = make_round_player(cfg, data)
    setup_s = time.perf_counter() - start
    history: list[RoundMetrics] = []
    with (out_dir / "metrics.jsonl").open("w") as sink:
        for rnd in range(1, cfg.rounds + 1):
            metrics = play(rnd)
            history.append(metrics)
            sink.write(json.dumps(dataclasses.asdict(metrics), default=float) + "\n")
            sink.flush()
            if on_round is not None:
                on_round(metrics)
    summary = summarize(cfg, history, setup_s, time.perf_counter() - start)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_accuracy(history, out_dir / "accuracy.png", title=run_title(cfg))
    return summary


def make_round_player(cfg: SimConfig,
                      data: Dataset | None = None) -> Callable[[int], RoundMetrics]:
    """Build the federation (with its ledger when ``cfg.ledger``) and return its round function."""
    if cfg.ledger != "none":
        from phalanx.sim.chained import build_chained, run_chained_round

        run = build_chained(cfg, data)
        return lambda rnd: run_chained_round(run, rnd)
    fed = build_federation(cfg, data)
    return lambda rnd: run_round(fed, rnd)


def summarize(cfg: SimConfig, history: list[RoundMetrics], setup_s: float,
              wall_s: float) -> dict[str, Any]:
    """The run's headline numbers."""
    last = history[-1]
    phases: dict[str, float] = {}
    for m in history:
        for phase, s in m.seconds.items():
            phases[phase] = phases.get(phase, 0.0) + s
    return {
        "final_accuracy": last.accuracy,
        "final_loss": last.loss,
        "best_accuracy": max(m.accuracy for m in history),
        "final_attack_success_rate": last.attack_success_rate,
        "rounds": len(history),
        "rejected_inputs": sum(len(m.rejected) for m in history),
        "malicious_accepted": sum(m.malicious_accepted for m in history),
        "seconds_by_phase": phases,
        "setup_s": setup_s,
        "wall_s": wall_s,
        "rule": cfg.rule,
        "attack": cfg.attack,
        "secure": cfg.secure,
    }


def run_title(cfg: SimConfig) -> str:
    mode = "secure" if cfg.secure else "plaintext"
    return (f"{cfg.dataset}/{cfg.model}, {cfg.peers} peers, {cfg.malicious:.0%} {cfg.attack}, "
            f"{cfg.rule} ({mode})")


def plot_accuracy(history: list[RoundMetrics], path: Path, *, title: str) -> None:
    """Accuracy per round (and attack success rate when measured) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rounds = [m.round for m in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(rounds, [m.accuracy for m in history], marker="o", label="test accuracy")
    asr = [m.attack_success_rate for m in history]
    if any(a is not None for a in asr):
        ax.plot(rounds, [math.nan if a is None else a for a in asr], marker="x",
                label="backdoor success rate")
    ax.set(xlabel="round", ylabel="fraction", ylim=(0, 1), title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
