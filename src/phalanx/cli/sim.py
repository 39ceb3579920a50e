"""``phalanx simulate`` and ``phalanx experiment``: thin wrappers over ``phalanx.sim``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from phalanx.errors import ConfigError

Opt = typer.Option


def parse_params(pairs: list[str] | None, option: str) -> dict[str, Any] | None:
    """``["tau=1.5", "iterations=3"]`` → ``{"tau": 1.5, "iterations": 3}`` (numbers, bools, str)."""
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option}={pair!r} must look like name=value")
        out[key.strip().replace("-", "_")] = parse_scalar(raw.strip())
    return out


def parse_scalar(raw: str) -> Any:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def fail(e: Exception) -> None:
    typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``experiment``."""

    @app.command()
    def simulate(
        config: Annotated[Path | None, Opt(help="A run.toml; options here override it.")] = None,
        peers: Annotated[int | None, Opt(help="Number of peers [20].")] = None,
        malicious: Annotated[float | None, Opt(help="Fraction of malicious peers [0.2].")] = None,
        attack: Annotated[str | None, Opt(help="none, sign-flip, scaling, label-flip, gaussian, "
                                               "alie, ipm, min-max, backdoor, free-rider.")] = None,
        attack_param: Annotated[list[str] | None, Opt(help="Attack parameter name=value.")] = None,
        knowledge: Annotated[str | None, Opt(help="omniscient or partial.")] = None,
        proposers: Annotated[int | None, Opt(help="Proposers per round (0 = all).")] = None,
        rule: Annotated[str | None, Opt(help="fedavg, fedavg-nb, fltrust, cc, cc-iter, rsa, krum, "
                                             "multi-krum, median, trimmed-mean [fltrust].")] = None,
        rule_param: Annotated[list[str] | None, Opt(help="Rule parameter name=value.")] = None,
        rounds: Annotated[int | None, Opt(help="Rounds [20].")] = None,
        model: Annotated[str | None, Opt(help="logreg, mlp, cnn, cnn1m [mlp].")] = None,
        dataset: Annotated[str | None, Opt(help="digits, mnist, fashion-mnist [digits].")] = None,
        data_dir: Annotated[str | None, Opt(help="IDX data directory (env PHALANX_DATA).")] = None,
        partition: Annotated[str | None, Opt(help="iid, dirichlet, shards [iid].")] = None,
        alpha: Annotated[float | None, Opt(help="Dirichlet concentration [0.5].")] = None,
        samples_per_peer: Annotated[int | None, Opt(help="Cap on each peer's examples "
                                                         "(0 = all).")] = None,
        local_epochs: Annotated[int | None, Opt(help="Local epochs per round [5].")] = None,
        batch_size: Annotated[int | None, Opt(help="Local batch size [16].")] = None,
        lr: Annotated[float | None, Opt(help="Local learning rate [0.05].")] = None,
        malformed_peers: Annotated[int | None, Opt(help="Extra peers sending NaN/inf/"
                                                        "wrong-length updates.")] = None,
        secure: Annotated[bool | None, Opt("--secure/--plaintext",
                                           help="Aggregate under MPC.")] = None,
        committee: Annotated[int | None, Opt(help="Committee size m (secure).")] = None,
        threshold: Annotated[int | None, Opt(help="Privacy threshold t (secure).")] = None,
        ledger: Annotated[str | None, Opt(help="none, embedded (the contract on an in-process "
                                               "EVM) or model (its Python mirror).")] = None,
        voters: Annotated[int | None, Opt(help="Voters per round (with a ledger) [5].")] = None,
        seed: Annotated[int | None, Opt(help="Seed of every random choice [0].")] = None,
        out: Annotated[Path | None, Opt(help="Run directory [runs/<name>-<time>].")] = None,
        progress: Annotated[bool, Opt(help="Show a progress bar.")] = True,
    ) -> None:
        """Simulate a federation in-process and write a run directory."""
        from phalanx.sim.config import load_config
        from phalanx.sim.run import default_run_dir
        from phalanx.sim.run import simulate as run_simulation

        try:
            cfg = load_config(
                config, peers=peers, malicious=malicious, attack=attack,
                attack_params=parse_params(attack_param, "--attack-param"), knowledge=knowledge,
                proposers=proposers, rule=rule,
                rule_params=parse_params(rule_param, "--rule-param"), rounds=rounds,
                model=model, dataset=dataset, data_dir=data_dir, partition=partition, alpha=alpha,
                samples_per_peer=samples_per_peer, local_epochs=local_epochs,
                batch_size=batch_size, lr=lr,
                malformed_peers=malformed_peers, secure=secure, committee=committee,
                threshold=threshold, ledger=ledger, voters=voters, seed=seed,
            )
            run_dir = out or default_run_dir(cfg)
            summary = run_with_progress(cfg, run_dir, progress, run_simulation)
        except ConfigError as e:
            fail(e)
            return
        typer.echo(f"run directory: {run_dir}")
        typer.echo(f"final_accuracy={summary['final_accuracy']:.4f}")

    @app.command()
    def experiment(
        rules: Annotated[str, Opt(help="Comma-separated rules.")] = "fedavg,fltrust",
        attacks: Annotated[str, Opt(help="Comma-separated attacks.")] = "none,sign-flip",
        config: Annotated[Path | None, Opt(help="Base run.toml for every cell.")] = None,
        peers: Annotated[int | None, Opt(help="Number of peers.")] = None,
        malicious: Annotated[float | None, Opt(help="Fraction of malicious peers.")] = None,
        rounds: Annotated[int | None, Opt(help="Rounds per cell.")] = None,
        model: Annotated[str | None, Opt(help="Model.")] = None,
        dataset: Annotated[str | None, Opt(help="Dataset.")] = None,
        data_dir: Annotated[str | None, Opt(help="IDX data directory.")] = None,
        partition: Annotated[str | None, Opt(help="iid, dirichlet, shards.")] = None,
        alpha: Annotated[float | None, Opt(help="Dirichlet concentration.")] = None,
        seed: Annotated[int | None, Opt(help="Seed.")] = None,
        out: Annotated[Path, Opt(help="Output directory.")] = Path("runs/experiment"),
    ) -> None:
        """Run a grid of rules × attacks; write results.md, results.csv and results.png."""
        from phalanx.sim.config import load_config
        from phalanx.sim.experiment import cell_text, run_grid

        try:
            base = load_config(config, peers=peers, malicious=malicious, rounds=rounds,
                               model=model, dataset=dataset, data_dir=data_dir,
                               partition=partition, alpha=alpha, seed=seed)
            rule_list = [r.strip() for r in rules.split(",") if r.strip()]
            attack_list = [a.strip() for a in attacks.split(",") if a.strip()]
            run_grid(base, rule_list, attack_list, out, on_cell=lambda cells: typer.echo(
                f"{cells[-1].rule:>13} × {cells[-1].attack:<11} {cell_text(cells[-1])}"))
        except ConfigError as e:
            fail(e)
            return
        typer.echo(f"tables: {out / 'results.md'}, {out / 'results.csv'}, {out / 'results.png'}")


def run_with_progress(cfg: Any, run_dir: Path, progress: bool, run: Any) -> Any:
    """Run the simulation under a rich progress bar showing the round and current accuracy."""
    if not progress:
        return run(cfg, run_dir)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("round"), MofNCompleteColumn(), BarColumn(),
               TextColumn("accuracy {task.fields[acc]}"), TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("simulate", total=cfg.rounds, acc="-")
        return run(cfg, run_dir, lambda m: bar.update(task, advance=1, acc=f"{m.accuracy:.3f}"))
