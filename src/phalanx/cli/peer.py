"""``phalanx peer init`` and ``phalanx peer run``: one real peer process (node/, issue 10)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from phalanx.cli.errors import one_line_errors

Opt = typer.Option
peer_app = typer.Typer(help="A real peer: its keystore, config and process.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``peer init`` and ``peer run``."""
    app.add_typer(peer_app, name="peer")


@peer_app.command("init")
@one_line_errors
def init(
    dir: Annotated[Path, Opt("--dir", help="The peer's directory (keystore/, peer.toml).")],
    rpc_url: Annotated[str, Opt(help="The chain node's JSON-RPC URL.")] = "http://127.0.0.1:8545",
    contract: Annotated[str | None, Opt(help="The task's contract address.")] = None,
    task: Annotated[Path | None, Opt(help="The task's config.toml (dataset, model, rule, "
                                     "seed).")] = None,
    partition: Annotated[int, Opt(help="This peer's partition index of the task's data.")] = 0,
    listen: Annotated[str, Opt(help="host:port to listen on.")] = "127.0.0.1:50051",
    advertise: Annotated[str | None, Opt(help="host:port registered on chain (default: "
                                         "--listen).")] = None,
    passphrase_env: Annotated[str | None, Opt(help="Encrypt the keystore with the passphrase "
                                              "in this environment variable.")] = None,
) -> None:
    """Create a keystore (secp256k1 + X25519, mode 0600) and a peer.toml in DIR."""
    from phalanx.errors import ConfigError
    from phalanx.node.keystore import create_keystore

    toml = dir / "peer.toml"
    if toml.exists():
        raise ConfigError(f"{toml} exists; refusing to overwrite it")
    secret = _passphrase(passphrase_env)
    store = create_keystore(dir / "keystore", secret)
    lines = ["[peer]", 'keystore = "keystore"', f'listen = "{listen}"']
    if advertise:
        lines.append(f'advertise = "{advertise}"')
    lines += ['run_dir = "run"', "", "[chain]", f'rpc_url = "{rpc_url}"',
              f'contract = "{contract or "0x" + "0" * 40}"', "", "[data]",
              f'task = "{task.resolve() if task else "config.toml"}"',
              f"partition = {partition}", ""]
    toml.write_text("\n".join(lines))
    typer.echo(f"peer {store.address}: keystore in {dir / 'keystore'}, config {toml}")
    if contract is None or task is None:
        typer.echo("edit peer.toml: set [chain] contract and [data] task before `peer run`")


def _passphrase(env: str | None) -> str | None:
    from phalanx.errors import ConfigError

    if env is None:
        return None
    value = os.environ.get(env)
    if not value:
        raise ConfigError(f"passphrase_env={env!r}: the variable is unset or empty")
    return value


@peer_app.command("run")
@one_line_errors
def run(
    config: Annotated[Path, Opt("--config", help="The peer's peer.toml.")],
    passphrase_env: Annotated[str | None, Opt(help="The keystore's passphrase is in this "
                                              "environment variable.")] = None,
) -> None:
    """Run the peer: register (or re-use its stake), follow the chain, play its roles."""
    from phalanx.node.config import load_peer_config
    from phalanx.node.runner import run_peer

    run_peer(load_peer_config(config), _passphrase(passphrase_env))
