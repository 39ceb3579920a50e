"""A grid of simulations (rules × attacks × seeds) and its tables, heatmap and report.

Every cell shares the base configuration; ``rule_params`` and ``attack_params`` go to each cell
whose rule / attack reads them (a parameter no rule or attack of the grid reads is an error).
With several seeds each cell reports the mean and the standard deviation over the seeds.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phalanx.errors import ConfigError
from phalanx.sim.config import SimConfig
from phalanx.sim.federation import load_sim_dataset
from phalanx.sim.run import simulate


@dataclass(frozen=True)
class Cell:
    """One grid cell: final accuracy (mean over seeds) and attack success rate for backdoor."""

    rule: str
    attack: str
    final_accuracy: float
    attack_success_rate: float | None
    rejected_inputs: int
    wall_s: float
    #: standard deviation of the final accuracy over the seeds (None for one seed)
    accuracy_std: float | None = None
    seeds: tuple[int, ...] = ()
    final_accuracies: tuple[float, ...] = field(default=())


def rule_param_names(rule: str) -> set[str]:
    """The parameters rule ``rule`` takes (its dataclass fields)."""
    from phalanx.rules import RULES

    cls = RULES.get(rule)
    if cls is None:
        raise ConfigError(f"rule={rule!r} is unknown; choose one of {sorted(RULES)}")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # every Rule is a dataclass
    return {f.name for f in fields if f.init}


def attack_param_names(attack: str) -> set[str]:
    from phalanx.attacks.poisoning import ATTACK_PARAMS, Attack, coerce_enum

    return set(ATTACK_PARAMS[coerce_enum(Attack, attack, "attack")])


def split_params(kind: str, params: Mapping[str, Any], names: Sequence[str],
                 reads: Callable[[str], set[str]]) -> dict[str, dict[str, Any]]:
    """``{name: the params it reads}``; ConfigError for a parameter none of ``names`` reads."""
    taken = {n: reads(n) for n in names}
    for key, value in params.items():
        if not any(key in t for t in taken.values()):
            raise ConfigError(f"{kind} parameter {key}={value!r} is read by none of the grid's "
                              f"{kind}s {list(names)}")
    return {n: {k: v for k, v in params.items() if k in t} for n, t in taken.items()}


def make_cells(base: SimConfig, rules: Sequence[str], attacks: Sequence[str],
               seeds: Sequence[int], rule_params: Mapping[str, Any],
               attack_params: Mapping[str, Any]) -> list[tuple[str, str, int, SimConfig]]:
    """Every cell's configuration, validated before the first one runs."""
    if not rules or not attacks or not seeds:
        raise ConfigError(f"rules={list(rules)}, attacks={list(attacks)} and seeds="
                          f"{list(seeds)} must be non-empty")
    for name, values in (("rules", rules), ("attacks", attacks), ("seeds", seeds)):
        if len(set(values)) != len(values):
            raise ConfigError(f"{name}={list(values)} lists a value twice")
    by_rule = split_params("rule", rule_params, rules, rule_param_names)
    by_attack = split_params("attack", attack_params, attacks, attack_param_names)
    return [(r, a, s, base.replace(rule=r, attack=a, seed=s, rule_params=by_rule[r],
                                   attack_params=by_attack[a]))
            for r in rules for a in attacks for s in seeds]


def run_grid(base: SimConfig, rules: Sequence[str], attacks: Sequence[str], out_dir: Path,
             on_cell: Callable[[list[Cell]], None] | None = None, *,
             seeds: Sequence[int] | None = None, rule_params: Mapping[str, Any] | None = None,
             attack_params: Mapping[str, Any] | None = None,
             overwrite: bool = False) -> list[Cell]:
    """Run every (rule, attack, seed) with ``base``'s other settings; one sub-directory per run.

    ``seeds`` default to ``[base.seed]``; ``rule_params`` / ``attack_params`` default to the
    base's. The dataset is loaded once per seed; ``on_cell`` sees the cells done so far.
    """
    seeds = list(seeds) if seeds is not None else [base.seed]
    configs = make_cells(base, rules, attacks, seeds,
                         base.rule_params if rule_params is None else rule_params,
                         base.attack_params if attack_params is None else attack_params)
    data = {s: load_sim_dataset(base.replace(seed=s)) for s in seeds}
    summaries: dict[tuple[str, str], list[dict[str, Any]]] = {}
    cells: list[Cell] = []
    for rule, attack, seed, cfg in configs:
        run_dir = cell_dir(out_dir, rule, attack, seed, len(seeds))
        summary = simulate(cfg, run_dir, data=data[seed], overwrite=overwrite)
        summaries.setdefault((rule, attack), []).append(summary)
        if len(summaries[(rule, attack)]) == len(seeds):
            cells.append(make_cell(rule, attack, seeds, summaries[(rule, attack)]))
            if on_cell is not None:
                on_cell(cells)
    title = grid_title(base, seeds)
    write_tables(cells, rules, attacks, out_dir, title=title)
    from phalanx.sim.report import write_grid_report

    write_grid_report(out_dir, cells, rules, attacks, seeds, title=title)
    return cells


def cell_dir(out_dir: Path, rule: str, attack: str, seed: int, n_seeds: int) -> Path:
    """``rule__attack`` (one seed) or ``rule__attack/s<seed>``."""
    base = out_dir / f"{rule}__{attack}"
    return base if n_seeds == 1 else base / f"s{seed}"


def make_cell(rule: str, attack: str, seeds: Sequence[int],
              summaries: Sequence[dict[str, Any]]) -> Cell:
    accs = tuple(float(s["final_accuracy"]) if s.get("final_accuracy") is not None
                 else float("nan") for s in summaries)
    asrs = [s["final_attack_success_rate"] for s in summaries
            if s.get("final_attack_success_rate") is not None]
    return Cell(rule, attack, statistics.fmean(accs),
                statistics.fmean(asrs) if asrs else None,
                sum(int(s.get("rejected_inputs") or 0) for s in summaries),
                sum(float(s.get("wall_s") or 0.0) for s in summaries),
                statistics.stdev(accs) if len(accs) > 1 else None, tuple(seeds), accs)


def grid_title(cfg: SimConfig, seeds: Sequence[int] | None = None) -> str:
    part = cfg.partition if cfg.partition != "dirichlet" else f"dirichlet({cfg.alpha})"
    seeds = [cfg.seed] if seeds is None else list(seeds)
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {','.join(map(str, seeds))}"
    return (f"{cfg.dataset}, {cfg.model}, {cfg.peers} peers, {cfg.malicious:.0%} malicious, "
            f"{part}, {cfg.rounds} rounds, {seed_text}")


def cell_text(cell: Cell) -> str:
    text = f"{cell.final_accuracy:.3f}"
    if cell.accuracy_std is not None:
        text += f" ± {cell.accuracy_std:.3f}"
    if cell.attack_success_rate is not None:
        text += f" (ASR {cell.attack_success_rate:.2f})"
    return text


def markdown_table(cells: Sequence[Cell], rules: Sequence[str], attacks: Sequence[str]) -> str:
    """Rows are rules, columns attacks; each cell the final accuracy (ASR for backdoor)."""
    by_key = {(c.rule, c.attack): c for c in cells}
    lines = ["| rule | " + " | ".join(attacks) + " |", "|---" * (len(attacks) + 1) + "|"]
    for rule in rules:
        row = [cell_text(by_key[(rule, a)]) if (rule, a) in by_key else "·" for a in attacks]
        lines.append(f"| {rule} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def write_tables(cells: Sequence[Cell], rules: Sequence[str], attacks: Sequence[str],
                 out_dir: Path, *, title: str) -> None:
    """``results.md``, ``results.csv``, ``results.json`` and ``results.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text(f"# {title}\n\n" + markdown_table(cells, rules, attacks))
    with (out_dir / "results.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rule", "attack", "final_accuracy", "accuracy_std",
                         "attack_success_rate", "rejected_inputs", "wall_s", "seeds"])
        for c in cells:
            asr = "" if c.attack_success_rate is None else f"{c.attack_success_rate:.4f}"
            std = "" if c.accuracy_std is None else f"{c.accuracy_std:.4f}"
            writer.writerow([c.rule, c.attack, f"{c.final_accuracy:.4f}", std, asr,
                             c.rejected_inputs, f"{c.wall_s:.1f}",
                             " ".join(map(str, c.seeds))])
    (out_dir / "results.json").write_text(json.dumps([dataclasses.asdict(c) for c in cells],
                                                     indent=1))
    plot_grid(cells, rules, attacks, out_dir / "results.png", title=title)


def plot_grid(cells: Sequence[Cell], rules: Sequence[str], attacks: Sequence[str], path: Path,
              *, title: str) -> None:
    """A heatmap of final accuracy, rules × attacks (mean ± std with several seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.full((len(rules), len(attacks)), np.nan)
    text = {}
    for c in cells:
        grid[rules.index(c.rule), attacks.index(c.attack)] = c.final_accuracy
        text[(rules.index(c.rule), attacks.index(c.attack))] = (
            f"{c.final_accuracy:.2f}" if c.accuracy_std is None
            else f"{c.final_accuracy:.2f}\n±{c.accuracy_std:.2f}")
    fig, ax = plt.subplots(figsize=(1.2 * len(attacks) + 2.5, 0.5 * len(rules) + 1.8))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right")
    ax.set_yticks(range(len(rules)), rules)
    for (i, j), label in text.items():
        if not np.isnan(grid[i, j]):
            ax.text(j, i, label, ha="center", va="center", fontsize=7,
                    color="white" if grid[i, j] < 0.6 else "black")
    ax.set_title(title, fontsize=8)
    fig.colorbar(im, ax=ax, label="final accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
