"""A grid of simulations (rules × attacks) and its tables: markdown, CSV and a heatmap."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from phalanx.errors import ConfigError
from phalanx.sim.config import SimConfig
from phalanx.sim.federation import load_sim_dataset
from phalanx.sim.run import simulate


@dataclass(frozen=True)
class Cell:
    """One grid cell: final accuracy (and attack success rate for backdoor)."""

    rule: str
    attack: str
    final_accuracy: float
    attack_success_rate: float | None
    rejected_inputs: int
    wall_s: float


def run_grid(base: SimConfig, rules: Sequence[str], attacks: Sequence[str], out_dir: Path,
             on_cell: Callable[[list[Cell]], None] | None = None) -> list[Cell]:
    """Run every (rule, attack) pair with ``base``'s other settings; one sub-directory per cell.

    The dataset is loaded once for the whole grid; ``on_cell`` sees the cells done so far.
    """
    if not rules or not attacks:
        raise ConfigError(f"rules={list(rules)} and attacks={list(attacks)} must be non-empty")
    configs = [(r, a, base.replace(rule=r, attack=a, rule_params={})) for r in rules
               for a in attacks]  # validates every cell before the first one runs
    data = load_sim_dataset(base)
    cells: list[Cell] = []
    for rule, attack, cfg in configs:
        summary = simulate(cfg, out_dir / f"{rule}__{attack}", data=data)
        cells.append(Cell(rule, attack, summary["final_accuracy"],
                          summary["final_attack_success_rate"], summary["rejected_inputs"],
                          summary["wall_s"]))
        if on_cell is not None:
            on_cell(cells)
    write_tables(cells, rules, attacks, out_dir, title=grid_title(base))
    return cells


def grid_title(cfg: SimConfig) -> str:
    part = cfg.partition if cfg.partition != "dirichlet" else f"dirichlet({cfg.alpha})"
    return (f"{cfg.dataset}, {cfg.model}, {cfg.peers} peers, {cfg.malicious:.0%} malicious, "
            f"{part}, {cfg.rounds} rounds, seed {cfg.seed}")


def cell_text(cell: Cell) -> str:
    text = f"{cell.final_accuracy:.3f}"
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
        writer.writerow(["rule", "attack", "final_accuracy", "attack_success_rate",
                         "rejected_inputs", "wall_s"])
        for c in cells:
            asr = "" if c.attack_success_rate is None else f"{c.attack_success_rate:.4f}"
            writer.writerow([c.rule, c.attack, f"{c.final_accuracy:.4f}", asr,
                             c.rejected_inputs, f"{c.wall_s:.1f}"])
    (out_dir / "results.json").write_text(json.dumps([c.__dict__ for c in cells], indent=1))
    plot_grid(cells, rules, attacks, out_dir / "results.png", title=title)


def plot_grid(cells: Sequence[Cell], rules: Sequence[str], attacks: Sequence[str], path: Path,
              *, title: str) -> None:
    """A heatmap of final accuracy, rules × attacks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.full((len(rules), len(attacks)), np.nan)
    for c in cells:
        grid[rules.index(c.rule), attacks.index(c.attack)] = c.final_accuracy
    fig, ax = plt.subplots(figsize=(1.2 * len(attacks) + 2.5, 0.5 * len(rules) + 1.8))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right")
    ax.set_yticks(range(len(rules)), rules)
    for i in range(len(rules)):
        for j in range(len(attacks)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if grid[i, j] < 0.6 else "black")
    ax.set_title(title, fontsize=8)
    fig.colorbar(im, ax=ax, label="final accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
