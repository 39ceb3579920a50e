"""``phalanx network up`` / ``down``: a local network of peer processes (node/network.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phalanx.cli.errors import EXIT_INTERRUPTED, one_line_errors
from phalanx.cli.sim import ATTACK_HELP, RULES, parse_params

Opt = typer.Option
net_app = typer.Typer(help="A local network of real peers on one chain node.",
                      no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``network up`` and ``network down``."""
    app.add_typer(net_app, name="network")


@net_app.command("up")
@one_line_errors
def up(
    config: Annotated[Path | None, Opt(help="A run.toml; options here override it.")] = None,
    peers: Annotated[int | None, Opt(help="Number of peers.")] = None,
    rounds: Annotated[int | None, Opt(help="Rounds.")] = None,
    secure: Annotated[bool, Opt("--secure", help="The secure protocol (required).")] = False,
    rule: Annotated[str | None, Opt(help=RULES + ".")] = None,
    rule_param: Annotated[list[str] | None, Opt(help="Rule parameter name=value.")] = None,
    attack: Annotated[str | None, Opt(help=ATTACK_HELP)] = None,
    malicious: Annotated[float | None, Opt(help="Fraction of malicious peers.")] = None,
    malformed_peers: Annotated[int | None, Opt(help="Broken peers besides --peers: registered, "
                                              "they upload garbage when drawn to "
                                              "propose.")] = None,
    server_attack: Annotated[str | None, Opt(help="Committee members cheating inside the MPC: "
                                            "tamper, silent, false-claim.")] = None,
    corrupt_servers: Annotated[int | None, Opt(help="How many members run --server-attack "
                                              "(default 1).")] = None,
    client_fault: Annotated[str | None, Opt(help="Malicious proposers cheating inside the MPC "
                                           "(as `phalanx simulate --client-fault`).")] = None,
    committee: Annotated[int | None, Opt(help="Committee size m.")] = None,
    threshold: Annotated[int | None, Opt(help="Privacy threshold t.")] = None,
    voters: Annotated[int | None, Opt(help="Voters per round.")] = None,
    model: Annotated[str | None, Opt(help="logreg, mlp, cnn, cnn1m.")] = None,
    dataset: Annotated[str | None, Opt(help="digits, mnist, ...")] = None,
    seed: Annotated[int | None, Opt(help="Seed of the task.")] = None,
    rpc: Annotated[str | None, Opt("--rpc", help="Use this chain node instead of starting "
                                   "anvil.")] = None,
    phase_timeout: Annotated[float, Opt(help="Seconds a phase waits for slow peers.")] = 90.0,
    tls: Annotated[bool, Opt("--tls", help="Mutual TLS between the peers (a private CA made "
                             "for this network).")] = False,
    out: Annotated[Path | None, Opt(help="Run directory (new or empty).")] = None,
) -> None:
    """Start a chain (anvil), deploy the task, run N peer processes until the rounds settle."""
    from phalanx.node.network import NetworkOptions, create_network, run_network
    from phalanx.sim.config import load_config
    from phalanx.sim.run import default_run_dir

    options = dict(peers=peers, rounds=rounds, rule=rule,
                   rule_params=parse_params(rule_param, "--rule-param"), attack=attack,
                   malicious=malicious, malformed_peers=malformed_peers,
                   server_attack=server_attack, corrupt_servers=corrupt_servers,
                   client_fault=client_fault, committee=committee, threshold=threshold,
                   voters=voters, model=model, dataset=dataset, seed=seed,
                   # --secure stays required on the command line (a --config may set it)
                   secure=True if secure else (None if config is not None else False),
                   ledger="embedded")
    cfg = load_config(config, **options)
    run_dir = out if out is not None else default_run_dir(cfg, Path("runs"))
    net = create_network(cfg, run_dir, NetworkOptions(rpc_url=rpc, phase_timeout=phase_timeout,
                                                      echo=typer.echo, tls=tls))
    broken = f" (+{cfg.malformed_peers} malformed)" if cfg.malformed_peers else ""
    typer.echo(f"network of {cfg.peers} peers{broken} on {net.ledger.address}: {run_dir}")
    try:
        summary = run_network(net)
    except KeyboardInterrupt:
        typer.echo("interrupted: every process stopped", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    typer.echo(f"final accuracy {summary.get('final_accuracy')}; run directory {run_dir}")


@net_app.command("down")
@one_line_errors
def down(dir: Annotated[Path, typer.Argument(help="The network's run directory.")]) -> None:
    """Stop every process a network left running."""
    from phalanx.node.network import network_down

    pids = network_down(dir)
    typer.echo(f"stopped {len(pids)} process(es)")
