"""A simulation run and its directory: resolved config, per-round metrics, summary, model, report.

Layout of a run directory::

    config.toml     the resolved configuration (re-runnable with --config)
    metrics.jsonl   one JSON object per round (accuracy, loss, ASR, per-phase seconds, rejections)
    summary.json    status (finished / interrupted / failed), final and best accuracy, totals,
                    the final model's sha256, wall time
    model.npy       the final global model: the flat float32 vector of model.parameters()
    accuracy.png    test accuracy (and ASR, for backdoor runs) per round
    report.html     one self-contained page: configuration, summary and plots (sim/report.py)
    state.npz       while a run is unfinished: the round player's state, for --resume

No JSON file holds NaN or inf: such values are null, and ``non_finite`` names them.
"""

from __future__ import annotations

import dataclasses
import math
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from phalanx.errors import ConfigError
from phalanx.ml.data import Dataset
from phalanx.sim.config import SimConfig, dump_toml, load_config
from phalanx.sim.federation import Federation, RoundMetrics, build_federation, run_round
from phalanx.sim.rundir import (
    dumps_finite,
    load_state,
    make_unique_dir,
    prepare_out_dir,
    save_model,
    save_state,
    slug,
    timestamp,
    write_text_atomic,
)

OnRound = Callable[[RoundMetrics], None]
#: the Federation fields a resumed run restores (everything else is rebuilt from the config and
#: the seed: every per-round random choice derives from (seed, round))
STATE_FIELDS = ("global_params", "previous_update")


@dataclass
class RoundPlayer:
    """The round function of a run, with the federation whose state a checkpoint holds."""

    play: Callable[[int], RoundMetrics]
    fed: Federation

    def __call__(self, rnd: int) -> RoundMetrics:
        return self.play(rnd)


def default_run_dir(cfg: SimConfig, root: Path = Path("runs")) -> Path:
    """Create ``runs/<dataset>-<rule>-<attack>-s<seed>-<timestamp>[-N]`` atomically; return it.

    Two runs started in the same second get different directories (``-2``, ``-3``, …).
    """
    name = f"{slug(cfg.dataset)}-{cfg.rule}-{cfg.attack}-s{cfg.seed}-{timestamp()}"
    return make_unique_dir(root, name)


def simulate(cfg: SimConfig, out_dir: Path, on_round: OnRound | None = None,
             data: Dataset | None = None, *, overwrite: bool = False) -> dict[str, Any]:
    """Run ``cfg.rounds`` rounds, writing the run directory as it goes; returns the summary.

    ``data``: an already loaded dataset to use instead of loading ``cfg.dataset``. ``out_dir``
    must be missing or empty (``overwrite``: its run files are replaced). On Ctrl-C the summary
    is written with status "interrupted" and KeyboardInterrupt propagates; on any other error
    with status "failed" and the error propagates.
    """
    prepare_out_dir(out_dir, overwrite=overwrite)
    (out_dir / "config.toml").write_text(dump_toml(cfg.to_dict()))
    (out_dir / "metrics.jsonl").touch()
    start = time.perf_counter()
    play = make_round_player(cfg, data)
    setup_s = time.perf_counter() - start
    return play_rounds(cfg, out_dir, play, [], 1, setup_s, start, on_round)


def resume(run_dir: Path, on_round: OnRound | None = None,
           data: Dataset | None = None) -> dict[str, Any]:
    """Continue an interrupted (or failed) run from its last completed round.

    Exact (the same metrics and model as an uninterrupted run of the same seed) for plaintext
    runs without a ledger, and for secure runs with ``reproducible_secrets``; refused otherwise
    (the ledger's contract state and the parties' own secrets are not checkpointed).
    """
    cfg = load_config(run_dir / "config.toml")
    check_resumable(cfg, run_dir)
    done, state = load_state(run_dir / "state.npz")
    rows = read_metrics(run_dir)[:done]
    if len(rows) != done:
        raise ConfigError(f"resume: {run_dir}/metrics.jsonl has {len(rows)} rounds, the "
                          f"checkpoint {done}")
    write_text_atomic(run_dir / "metrics.jsonl",
                      "".join(dumps_finite(r) + "\n" for r in rows))
    start = time.perf_counter()
    play = make_round_player(cfg, data)
    set_state(play.fed, state)
    history = [metrics_from_row(r) for r in rows]
    previous = read_summary(run_dir)
    setup_s = time.perf_counter() - start + float(previous.get("setup_s") or 0.0)
    start -= float(previous.get("wall_s") or 0.0)
    return play_rounds(cfg, run_dir, play, history, done + 1, setup_s, start, on_round)


def why_not_resumable(cfg: SimConfig) -> str | None:
    """Why a run of ``cfg`` cannot be resumed exactly (None: it can)."""
    if cfg.ledger != "none":
        return (f"ledger={cfg.ledger!r} runs cannot be resumed (the contract's state is not "
                "checkpointed); only ledger='none'")
    if cfg.secure and not cfg.reproducible_secrets:
        return "a secure run resumes exactly only with reproducible_secrets=true"
    return None


def check_resumable(cfg: SimConfig, run_dir: Path) -> None:
    """ConfigError unless the run is unfinished and its mode can be resumed exactly."""
    status = read_summary(run_dir).get("status")
    if status == "finished":
        raise ConfigError(f"resume={run_dir}: the run is already finished")
    reason = why_not_resumable(cfg)
    if reason is not None:
        raise ConfigError(f"resume={run_dir}: {reason}")
    if not (run_dir / "state.npz").is_file():
        raise ConfigError(f"resume={run_dir}: no state.npz (no round completed)")


def play_rounds(cfg: SimConfig, out_dir: Path, play: RoundPlayer, history: list[RoundMetrics],
                first: int, setup_s: float, start: float,
                on_round: OnRound | None) -> dict[str, Any]:
    """Rounds ``first..cfg.rounds``; the summary is written whatever happens."""
    status, error = "failed", None
    # the model after the last completed round (an interrupted round may have moved fed's)
    checkpoint = get_state(play.fed)
    try:
        with (out_dir / "metrics.jsonl").open("a") as sink:
            for rnd in range(first, cfg.rounds + 1):
                metrics = play(rnd)
                history.append(metrics)
                sink.write(dumps_finite(dataclasses.asdict(metrics)) + "\n")
                sink.flush()
                checkpoint = get_state(play.fed)
                save_state(out_dir / "state.npz", rnd, checkpoint)
                if on_round is not None:
                    on_round(metrics)
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException as e:
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        play.fed.executor.close()  # a local Ray instance goes down, also on Ctrl-C
        finish(cfg, out_dir, play.fed, checkpoint["global_params"], history, status, error,
               setup_s, time.perf_counter() - start)
    return read_summary(out_dir)


def finish(cfg: SimConfig, out_dir: Path, fed: Federation, params: np.ndarray,
           history: list[RoundMetrics], status: str, error: str | None, setup_s: float,
           wall_s: float) -> None:
    """summary.json, model.npy, accuracy.png and report.html (a failed report never hides the
    run's own outcome)."""
    summary = summarize(cfg, history, setup_s, wall_s)
    summary.update(status=status, malicious_peers=sorted(int(p) for p in fed.malicious))
    if error is not None:
        summary["error"] = error
    summary["model_file"] = "model.npy"
    summary["model_sha256"] = save_model(out_dir / "model.npy", params)
    if status == "finished":
        (out_dir / "state.npz").unlink(missing_ok=True)
    write_text_atomic(out_dir / "summary.json", dumps_finite(summary, indent=2) + "\n")
    if history:
        plot_accuracy(history, out_dir / "accuracy.png", title=run_title(cfg))
    try:
        from phalanx.sim.report import write_run_report

        write_run_report(out_dir)
    except Exception as e:  # the report is a view of the files; the run itself is complete
        summary["report_error"] = f"{type(e).__name__}: {e}"
        write_text_atomic(out_dir / "summary.json", dumps_finite(summary, indent=2) + "\n")


def make_round_player(cfg: SimConfig, data: Dataset | None = None) -> RoundPlayer:
    """Build the federation (with its ledger when ``cfg.ledger``) and return its round function.

    The result is callable as ``play(round) -> RoundMetrics``; ``play.fed`` is the federation
    whose :data:`STATE_FIELDS` a checkpoint holds.
    """
    # the per-peer protocol plays secure ledger runs (with their server and client adversaries)
    if cfg.ledger != "none" and cfg.secure:
        from phalanx.sim.peers import build_peer_run, run_peer_round

        peers = build_peer_run(cfg, data)
        return RoundPlayer(lambda rnd: run_peer_round(peers, rnd), peers.fed)
    if cfg.ledger != "none":
        from phalanx.sim.chained import build_chained, run_chained_round

        run = build_chained(cfg, data)
        return RoundPlayer(lambda rnd: run_chained_round(run, rnd), run.fed)
    fed = build_federation(cfg, data)
    return RoundPlayer(lambda rnd: run_round(fed, rnd), fed)


def get_state(fed: Federation) -> dict[str, np.ndarray]:
    """The federation's state that evolves over rounds (copies)."""
    return {name: np.array(getattr(fed, name), copy=True) for name in STATE_FIELDS}


def set_state(fed: Federation, state: dict[str, np.ndarray]) -> None:
    """Restore :func:`get_state`'s arrays (shapes checked against the freshly built model)."""
    for name in STATE_FIELDS:
        current = getattr(fed, name)
        value = state.get(name)
        if value is None or value.shape != current.shape:
            got = None if value is None else value.shape
            raise ConfigError(f"resume: state {name} has shape {got}, the model {current.shape}")
        setattr(fed, name, value.astype(current.dtype))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl`` (a torn last line, from a kill mid-write, is dropped)."""
    import json

    rows: list[dict[str, Any]] = []
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def read_summary(run_dir: Path) -> dict[str, Any]:
    """``summary.json`` (empty when missing or unreadable)."""
    import json

    try:
        value = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def metrics_from_row(row: dict[str, Any]) -> RoundMetrics:
    """A metrics.jsonl row back as RoundMetrics (nulls from NaN come back as NaN)."""
    fields = {f.name for f in dataclasses.fields(RoundMetrics)}
    values = {k: v for k, v in row.items() if k in fields}
    for name in ("accuracy", "loss"):
        if values.get(name) is None:
            values[name] = math.nan
    return RoundMetrics(**values)


def summarize(cfg: SimConfig, history: list[RoundMetrics], setup_s: float,
              wall_s: float) -> dict[str, Any]:
    """The run's headline numbers (accuracies are None when no round completed)."""
    phases: dict[str, float] = {}
    for m in history:
        for phase, s in m.seconds.items():
            phases[phase] = phases.get(phase, 0.0) + s
    last = history[-1] if history else None
    finite = [m.accuracy for m in history if math.isfinite(m.accuracy)]
    return {
        "final_accuracy": None if last is None else last.accuracy,
        "final_loss": None if last is None else last.loss,
        "best_accuracy": max(finite) if finite else None,
        "final_attack_success_rate": None if last is None else last.attack_success_rate,
        "rounds": len(history),
        "rounds_planned": cfg.rounds,
        "rejected_inputs": sum(len(m.rejected) for m in history),
        "malicious_accepted": sum(m.malicious_accepted for m in history),
        "zero_trust_inputs": sum(m.zero_trust for m in history),
        "malicious_zero_trust": sum(m.malicious_zero_trust for m in history),
        "seconds_by_phase": phases,
        "setup_s": setup_s,
        "wall_s": wall_s,
        "rule": cfg.rule,
        "attack": cfg.attack,
        "secure": cfg.secure,
        "ledger": cfg.ledger,
        "reproducible_secrets": cfg.reproducible_secrets,
        "trust_bit": cfg.reveals_trust_bit,
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


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's ``config.toml`` as a dict (empty when missing or unreadable)."""
    try:
        return tomllib.loads((run_dir / "config.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
