"""``phalanx simulate``, ``phalanx experiment`` and ``phalanx report``: thin wrappers over
``phalanx.sim``."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from phalanx.cli.errors import EXIT_INTERRUPTED, one_line_errors
from phalanx.errors import ConfigError
from phalanx.sim.config import CLIENT_FAULT_RULES, SimConfig

Opt = typer.Option
#: SimConfig's defaults (read from the fields: building a SimConfig would import torch)
DEFAULTS = {f.name: f.default for f in dataclasses.fields(SimConfig)}


def default(name: str) -> str:
    """SimConfig's default of ``name``, as --help shows it."""
    value = DEFAULTS[name]
    if isinstance(value, bool):
        return "true" if value else "false"
    return "automatic" if value is None else str(value)


def parse_params(pairs: list[str] | None, option: str) -> dict[str, Any] | None:
    """``["tau=1.5", "iterations=3"]`` → ``{"tau": 1.5, "iterations": 3}`` (numbers, bools, str)."""
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
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


def parse_seeds(text: str | None) -> list[int] | None:
    """``"0,1,2"`` → ``[0, 1, 2]``."""
    if text is None:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError as e:
        raise ConfigError(f"seeds={text!r} must be comma-separated integers") from e


CLIENT_FAULTS = ["none", *CLIENT_FAULT_RULES]
ATTACKS = "none, sign-flip, scaling, label-flip, gaussian, alie, ipm, min-max, backdoor, free-rider"
RULES = "fedavg, fedavg-nb, fltrust, cc, cc-iter, rsa, krum, multi-krum, median, trimmed-mean"
#: the rules without a secure form (rules/*.py ``secure_compatible``; tested against RULES)
PLAIN_ONLY = "fedavg, cc-iter, krum, multi-krum, median, trimmed-mean"
ATTACK_HELP = (f"{ATTACKS}. ON by default: {DEFAULTS['malicious']:.0%} of the peers run "
               f"{DEFAULTS['attack']}; "
               "--attack none (or --malicious 0) for an honest federation.")


def register(app: typer.Typer) -> None:
    """Add ``simulate``, ``experiment`` and ``report``."""
    app.command()(simulate)
    app.command()(experiment)
    app.command()(report)


@one_line_errors
def simulate(
    config: Annotated[Path | None, Opt(help="A run.toml; options here override it.")] = None,
    peers: Annotated[int | None, Opt(help="Number of peers.", show_default=default("peers"))
                     ] = None,
    malicious: Annotated[float | None, Opt(help="Fraction of malicious peers.",
                                           show_default=default("malicious"))] = None,
    attack: Annotated[str | None, Opt(help=ATTACK_HELP, show_default=default("attack"))] = None,
    attack_param: Annotated[list[str] | None, Opt(
        help="Attack parameter name=value (only those the attack reads, e.g. scale=20 for "
             "scaling).")] = None,
    knowledge: Annotated[str | None, Opt(help="omniscient or partial.",
                                         show_default=default("knowledge"))] = None,
    proposers: Annotated[int | None, Opt(help="Proposers per round (0 = all).",
                                         show_default=default("proposers"))] = None,
    rule: Annotated[str | None, Opt(help=RULES + f". {PLAIN_ONLY} have no secure form: "
                                    "they need --plaintext.", show_default=default("rule"))
                    ] = None,
    rule_param: Annotated[list[str] | None, Opt(help="Rule parameter name=value.")] = None,
    rounds: Annotated[int | None, Opt(help="Rounds.", show_default=default("rounds"))] = None,
    model: Annotated[str | None, Opt(
        help="logreg, mlp, cnn, cnn1m, or your own package.module:function (called with the "
             "input shape (C, H, W) and the number of classes; returns a torch module).",
        show_default=default("model"))] = None,
    dataset: Annotated[str | None, Opt(
        help="digits, mnist, fashion-mnist, or your own idx:DIR (the four standard IDX files) "
             "or npz:FILE (x_train, y_train, x_test, y_test).",
        show_default=default("dataset"))] = None,
    data_dir: Annotated[str | None, Opt(help="IDX data directory of mnist / fashion-mnist.",
                                        show_default="$PHALANX_DATA or ~/.cache/phalanx/data"
                                        )] = None,
    partition: Annotated[str | None, Opt(help="iid, dirichlet, shards.",
                                         show_default=default("partition"))] = None,
    alpha: Annotated[float | None, Opt(help="Dirichlet concentration.",
                                       show_default=default("alpha"))] = None,
    samples_per_peer: Annotated[int | None, Opt(help="Cap on each peer's examples (0 = all).",
                                                show_default=default("samples_per_peer"))
                                ] = None,
    local_epochs: Annotated[int | None, Opt(help="Local epochs per round.",
                                            show_default=default("local_epochs"))] = None,
    batch_size: Annotated[int | None, Opt(help="Local batch size.",
                                          show_default=default("batch_size"))] = None,
    lr: Annotated[float | None, Opt(help="Local learning rate.", show_default=default("lr"))
                  ] = None,
    malformed_peers: Annotated[int | None, Opt(help="Extra peers sending NaN/inf/wrong-length "
                                               "updates.",
                                               show_default=default("malformed_peers"))] = None,
    secure: Annotated[bool | None, Opt(
        "--secure/--plaintext", help="--secure: aggregate under the committee MPC (the "
        "default). --plaintext: the plain rule, no MPC; with --ledger none the fast research "
        "mode.", show_default="secure")] = None,
    committee: Annotated[int | None, Opt(help="Committee size m (not with --plaintext "
                                         "--ledger none).",
                                         show_default=default("committee"))] = None,
    threshold: Annotated[int | None, Opt(help="Privacy threshold t (not with --plaintext "
                                         "--ledger none).",
                                         show_default=default("threshold"))] = None,
    frac_bits: Annotated[int | None, Opt(help="Fixed-point fractional bits of the secure "
                                         "encoding, 4..24 (automatic: the largest safe f).",
                                         show_default="automatic")] = None,
    reproducible_secrets: Annotated[bool | None, Opt(
        "--reproducible-secrets", help="Secure runs derive every party's secrets from --seed: "
        "reproducible (and resumable), but NOT secret.", show_default="false")] = None,
    trust_bit: Annotated[bool | None, Opt(
        "--trust-bit/--no-trust-bit", help="Secure fltrust: the committee reveals one bit per "
        "client, trust weight > 0, and pays only those (a valid weight-0 input is neither "
        "accepted nor rejected; docs/economics.md). Costs that bit of privacy per client.",
        show_default="on for secure fltrust runs with a ledger")] = None,
    server_attack: Annotated[str | None, Opt(
        help="Committee members cheating inside the MPC (secure runs only): tamper (alter every "
             "share they send), silent (send nothing) or false-claim (dispute honest "
             "uploads).", show_default=default("server_attack"))] = None,
    corrupt_servers: Annotated[int | None, Opt(help="How many committee members run "
                                               "--server-attack (a seeded choice per round).",
                                               show_default="1")] = None,
    client_fault: Annotated[str | None, Opt(
        help="Malicious proposers cheating inside the MPC (secure runs only): "
             + ", ".join(CLIENT_FAULTS) + ".", show_default=default("client_fault"))] = None,
    faulty_clients: Annotated[int | None, Opt(help="How many malicious proposers per round run "
                                              "--client-fault (the lowest ids).",
                                              show_default="1")] = None,
    ledger: Annotated[str | None, Opt(help="embedded (the contract on an in-process EVM), "
                                      "model (its Python mirror) or none (no chain: no "
                                      "committee/voter roles, stakes or slashes).",
                                      show_default=default("ledger"))] = None,
    voters: Annotated[int | None, Opt(help="Voters per round (with a ledger).",
                                      show_default=default("voters"))] = None,
    seed: Annotated[int | None, Opt(help="Seed of every random choice.",
                                    show_default=default("seed"))] = None,
    out: Annotated[Path | None, Opt(help="Run directory (must be empty or new).",
                                    show_default="runs/<dataset>-<rule>-<attack>-s<seed>-<time>"
                                    )] = None,
    overwrite: Annotated[bool, Opt(help="Replace the run files of a non-empty --out.")] = False,
    resume: Annotated[Path | None, Opt(help="Continue the interrupted run in this directory "
                                       "(runs with --ledger none: plaintext, or secure with "
                                       "--reproducible-secrets).")] = None,
    progress: Annotated[bool, Opt(help="Progress per round (a bar on a terminal, else one "
                                  "line per round).")] = True,
    backend: Annotated[str | None, Opt(help="Where the peers' local work runs: inprocess, or "
                                       "ray (pip install 'phalanx[ray]'; docs/scale.md).",
                                       show_default=default("backend"))] = None,
    ray_address: Annotated[str | None, Opt(help="Join this Ray cluster (auto or HOST:PORT) "
                                           "instead of starting a local instance.",
                                           show_default="a local instance")] = None,
    ray_cpus: Annotated[int | None, Opt(help="CPUs of the local Ray instance (0 = all).",
                                        show_default=default("ray_cpus"))] = None,
) -> None:
    """Simulate a federation in-process and write a run directory (with report.html).

    By default the whole system: secure aggregation under the committee MPC, judged and paid
    on the embedded ledger. --plaintext --ledger none is the fast research mode."""
    from phalanx.sim.config import load_config
    from phalanx.sim.run import default_run_dir
    from phalanx.sim.run import resume as resume_run
    from phalanx.sim.run import simulate as run_sim

    options = dict(
        peers=peers, malicious=malicious, attack=attack,
        attack_params=parse_params(attack_param, "--attack-param"), knowledge=knowledge,
        proposers=proposers, rule=rule, rule_params=parse_params(rule_param, "--rule-param"),
        rounds=rounds, model=model, dataset=dataset, data_dir=data_dir, partition=partition,
        alpha=alpha, samples_per_peer=samples_per_peer, local_epochs=local_epochs,
        batch_size=batch_size, lr=lr, malformed_peers=malformed_peers, secure=secure,
        committee=committee, threshold=threshold, frac_bits=frac_bits,
        reproducible_secrets=reproducible_secrets, trust_bit=trust_bit, ledger=ledger,
        voters=voters, seed=seed, server_attack=server_attack,
        corrupt_servers=corrupt_servers, client_fault=client_fault,
        faulty_clients=faulty_clients, backend=backend, ray_address=ray_address,
        ray_cpus=ray_cpus,
    )
    if resume is not None:
        given = sorted(k for k, v in options.items() if v is not None)
        if given or config is not None or out is not None:
            raise ConfigError(f"resume={resume} continues the run as configured in "
                              f"{resume}/config.toml; drop {given or ['--config/--out']}")
        from phalanx.sim.run import read_config

        cfg = load_config(resume / "config.toml") if read_config(resume) else None
        if cfg is None:
            raise ConfigError(f"resume={resume} has no readable config.toml")
        announce(cfg)
        run_dir = resume
        summary = run_with_progress(cfg, run_dir, progress, lambda c, d, cb=None: resume_run(
            d, cb))
    else:
        cfg = load_config(config, **options)
        announce(cfg)
        run_dir = out if out is not None else default_run_dir(cfg)
        summary = run_with_progress(cfg, run_dir, progress, lambda c, d, cb=None: run_sim(
            c, d, cb, overwrite=overwrite))
    print_outcome(run_dir, summary)


def announce(cfg: SimConfig) -> None:
    """Warnings before the first round: committee capture, reproducible secrets, what a
    server attack can be expected to do."""
    from phalanx.attacks.servers import server_attack_warning
    from phalanx.sim.secure_params import capture_warning

    if cfg.secure or cfg.ledger != "none":
        warning = capture_warning(cfg.peers, cfg.malicious, cfg.committee, cfg.threshold)
        if warning:
            typer.secho(warning, err=True, fg=typer.colors.YELLOW)
    if cfg.secure and cfg.reproducible_secrets:
        typer.secho("warning: --reproducible-secrets: every party's secrets derive from the "
                    "seed; this run's secrets are NOT secret", err=True, fg=typer.colors.YELLOW)
    if cfg.num_corrupt_servers:
        warning = server_attack_warning(cfg.server_attack, cfg.num_corrupt_servers,
                                        cfg.committee, cfg.threshold)
        if warning:
            typer.secho(warning, err=True, fg=typer.colors.YELLOW)


def print_outcome(run_dir: Path, summary: dict[str, Any]) -> None:
    """The short summary, the report's path and the last line ``final_accuracy=``."""
    from phalanx.sim.report import describe_run

    for line in describe_run(run_dir):
        typer.echo(line)
    typer.echo(f"run directory: {run_dir} (report: {run_dir / 'report.html'})")
    acc = summary.get("final_accuracy")
    typer.echo(f"final_accuracy={'nan' if acc is None else f'{acc:.4f}'}")


def run_with_progress(cfg: SimConfig, run_dir: Path, progress: bool, run: Any) -> Any:
    """Run under a rich bar on a terminal, one line per round otherwise; Ctrl-C exits 130
    after the summary (status "interrupted") is written."""
    try:
        if not progress:
            return run(cfg, run_dir)
        if not sys.stdout.isatty():
            return run(cfg, run_dir, lambda m: typer.echo(progress_line(cfg, m)))
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (TextColumn("round"), MofNCompleteColumn(), BarColumn(),
                   TextColumn("accuracy {task.fields[acc]}"), TimeElapsedColumn())
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task("simulate", total=cfg.rounds, acc="-")
            return run(cfg, run_dir, lambda m: bar.update(task, advance=1,
                                                          acc=f"{m.accuracy:.3f}"))
    except KeyboardInterrupt:
        from phalanx.sim.run import why_not_resumable

        reason = why_not_resumable(cfg)
        follow = (f"continue with `phalanx simulate --resume {run_dir}`" if reason is None
                  else f"not resumable: {reason}")
        typer.secho(f"interrupted: summary.json has status interrupted; {follow}", err=True,
                    fg=typer.colors.YELLOW)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def progress_line(cfg: SimConfig, m: Any) -> str:
    """``round 3/20 accuracy=0.9120 loss=0.31 rejected=1 (1.2 s)``, flushed per round."""
    seconds = sum(m.seconds.values())
    return (f"round {m.round}/{cfg.rounds} accuracy={m.accuracy:.4f} loss={m.loss:.4g} "
            f"accepted={m.accepted} rejected={len(m.rejected)} ({seconds:.1f} s)")


#: where ``experiment``'s defaults differ from ``simulate``'s: the grid is research (its default
#: rules include fedavg, which has no secure form), so plaintext without a ledger
EXPERIMENT_DEFAULTS: dict[str, Any] = {"secure": False, "ledger": "none"}


@one_line_errors
def experiment(
    rules: Annotated[str, Opt(help="Comma-separated rules.")] = "fedavg,fltrust",
    attacks: Annotated[str, Opt(help="Comma-separated attacks.")] = "none,sign-flip",
    seeds: Annotated[str | None, Opt(help="Comma-separated seeds: mean ± std per cell.",
                                     show_default="the config's seed")] = None,
    config: Annotated[Path | None, Opt(help="Base run.toml for every cell (its rule_params "
                                       "and attack_params go to the cells that read them).")
                      ] = None,
    rule_param: Annotated[list[str] | None, Opt(help="Rule parameter name=value (to every "
                                                "rule that takes it).")] = None,
    attack_param: Annotated[list[str] | None, Opt(help="Attack parameter name=value (to "
                                                  "every attack that reads it).")] = None,
    peers: Annotated[int | None, Opt(help="Number of peers.", show_default=default("peers"))
                     ] = None,
    malicious: Annotated[float | None, Opt(help="Fraction of malicious peers.",
                                           show_default=default("malicious"))] = None,
    rounds: Annotated[int | None, Opt(help="Rounds per cell.", show_default=default("rounds"))
                      ] = None,
    model: Annotated[str | None, Opt(help="Model.", show_default=default("model"))] = None,
    dataset: Annotated[str | None, Opt(help="Dataset.", show_default=default("dataset"))
                       ] = None,
    data_dir: Annotated[str | None, Opt(help="IDX data directory.")] = None,
    partition: Annotated[str | None, Opt(help="iid, dirichlet, shards.",
                                         show_default=default("partition"))] = None,
    alpha: Annotated[float | None, Opt(help="Dirichlet concentration.",
                                       show_default=default("alpha"))] = None,
    seed: Annotated[int | None, Opt(help="Seed.", show_default=default("seed"))] = None,
    secure: Annotated[bool | None, Opt(
        "--secure/--plaintext", help="Aggregate every cell under the committee MPC, or in "
        "plaintext. Unlike simulate, the grid is research: plaintext by default (a --config "
        "may set secure).", show_default="plaintext")] = None,
    ledger: Annotated[str | None, Opt(help="none, embedded or model for every cell (a "
                                      "--config may set it).", show_default="none")] = None,
    out: Annotated[Path | None, Opt(help="Output directory (must be empty or new).",
                                    show_default="runs/experiment-<time>")] = None,
    overwrite: Annotated[bool, Opt(help="Replace the files of a non-empty --out.")] = False,
) -> None:
    """Run a grid of rules × attacks (× seeds); write results.md/.csv/.json/.png, report.html.

    The grid is plaintext without a ledger unless --secure / --ledger (or the --config) say
    otherwise: unlike ``simulate``, whose default is the whole system."""
    import tomllib

    from phalanx.sim.config import load_config
    from phalanx.sim.experiment import cell_text, run_grid
    from phalanx.sim.rundir import make_unique_dir, prepare_out_dir, timestamp

    file_values: dict[str, Any] = {}
    if config is not None:
        try:
            file_values = tomllib.loads(config.read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"config={config} does not exist") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config={config} is not valid TOML: {e}") from e
    rule_params = {**dict(file_values.pop("rule_params", {}) or {}),
                   **(parse_params(rule_param, "--rule-param") or {})}
    attack_params = {**dict(file_values.pop("attack_params", {}) or {}),
                     **(parse_params(attack_param, "--attack-param") or {})}
    for name in ("rule", "attack"):
        file_values.pop(name, None)  # the grid sets them
    overrides = dict(peers=peers, malicious=malicious, rounds=rounds, model=model,
                     dataset=dataset, data_dir=data_dir, partition=partition, alpha=alpha,
                     seed=seed, secure=secure, ledger=ledger)
    base = load_config(None, **{**EXPERIMENT_DEFAULTS, **file_values,
                                **{k: v for k, v in overrides.items() if v is not None}})
    rule_list = [r.strip() for r in rules.split(",") if r.strip()]
    attack_list = [a.strip() for a in attacks.split(",") if a.strip()]
    seed_list = parse_seeds(seeds)
    if out is None:
        out = make_unique_dir(Path("runs"), f"experiment-{timestamp()}")
    else:
        prepare_out_dir(out, overwrite=overwrite)
    run_grid(base, rule_list, attack_list, out, seeds=seed_list, rule_params=rule_params,
             attack_params=attack_params, overwrite=overwrite,
             on_cell=lambda cells: typer.echo(
                 f"{cells[-1].rule:>13} × {cells[-1].attack:<11} {cell_text(cells[-1])}"))
    typer.echo(f"tables: {out / 'results.md'}, {out / 'results.csv'}, {out / 'results.png'}; "
               f"report: {out / 'report.html'}")


@one_line_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory of phalanx simulate.")],
) -> None:
    """Write RUN_DIR/report.html (configuration, summary, plots) and print the summary."""
    from phalanx.sim.report import describe_run, write_run_report

    if not run_dir.is_dir():
        raise ConfigError(f"run_dir={run_dir} is not a directory")
    path = write_run_report(run_dir)
    for line in describe_run(run_dir):
        typer.echo(line)
    typer.echo(f"report: {path}")
