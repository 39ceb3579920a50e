"""CLI commands of phalanx.chain: ``phalanx chain deploy`` and ``phalanx chain status``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from phalanx.chain.ledger import ContractLedger
    from phalanx.chain.model import TaskParams

ETH = 10**18


def register(app: typer.Typer) -> None:
    """Add this module's commands to app (a ``chain`` group)."""
    chain = typer.Typer(help="The on-chain ledger (Vyper contract): deploy, status.",
                        no_args_is_help=True)
    chain.command("deploy")(deploy)
    chain.command("status")(status)
    app.add_typer(chain, name="chain")


def _params(min_stake: float, committee: int, threshold: int, proposers: int, voters: int,
            rounds: int, phase_blocks: int) -> TaskParams:
    from phalanx.chain.model import TaskParams

    return TaskParams(
        min_stake=int(min_stake * ETH), committee_size=committee, threshold=threshold,
        n_proposers=proposers, n_voters=voters, rounds=rounds,
        registration_blocks=phase_blocks, beacon_blocks=phase_blocks,
        propose_blocks=phase_blocks, attest_blocks=phase_blocks, commit_blocks=phase_blocks,
        reveal_blocks=phase_blocks, unbond_delay=phase_blocks,
    )


def _account(key: str | None, rpc: str | None) -> LocalAccount:
    """The deployer: --key / $PHALANX_KEY, else a fresh key funded by the dev node."""
    from eth_account import Account

    key = key or os.environ.get("PHALANX_KEY")
    if key:
        acct: LocalAccount = Account.from_key(key)
        return acct
    acct = Account.create()
    if rpc is not None:
        from web3.types import RPCEndpoint

        from phalanx.chain.rpc import RpcLedger

        resp = RpcLedger.connect(rpc).provider.make_request(
            RPCEndpoint("anvil_setBalance"), [acct.address, hex(10**6 * ETH)])
        if "error" in resp:
            raise typer.BadParameter("no --key given and the node is not a dev node "
                                     "(anvil_setBalance failed)")
    return acct


def deploy(
    rpc: str = typer.Option(..., "--rpc", help="JSON-RPC URL, e.g. http://127.0.0.1:8545"),
    key: str = typer.Option(None, help="deployer private key (hex; or $PHALANX_KEY); "
                                       "default: a fresh key funded by a dev node"),
    pool: float = typer.Option(10.0, help="reward pool in ETH, paid by the deployer"),
    min_stake: float = typer.Option(1.0, help="minimum stake in ETH"),
    committee: int = typer.Option(5, help="committee size m"),
    threshold: int = typer.Option(1, help="threshold t (m >= 3t+1)"),
    proposers: int = typer.Option(20, help="proposers per round"),
    voters: int = typer.Option(11, help="voters per round"),
    rounds: int = typer.Option(100, help="rounds of the task"),
    phase_blocks: int = typer.Option(256, help="blocks per phase (registration, beacon, ...)"),
) -> None:
    """Deploy a task contract to a node; prints its address."""
    from phalanx.chain.ledger import make_ledger

    params = _params(min_stake, committee, threshold, proposers, voters, rounds, phase_blocks)
    deployer = _account(key, rpc)
    led = make_ledger("rpc", params=params, deployer=deployer, pool=int(pool * ETH), rpc_url=rpc)
    typer.echo(f"deployed Phalanx task at {led.address} (deployer {deployer.address}, "
               f"gas {led.gas_log[-1][1] if led.gas_log else 'n/a'})")
    _print_state(led)


def status(
    rpc: str = typer.Option(None, "--rpc", help="JSON-RPC URL (default: the embedded backend)"),
    address: str = typer.Option(None, help="task address on --rpc"),
    demo_rounds: int = typer.Option(1, help="embedded: rounds to play on a demo task first"),
    peers: int = typer.Option(40, help="embedded: peers of the demo task"),
    seed: int = typer.Option(0, help="embedded: seed of the demo"),
) -> None:
    """Print the task and round state, from a node (--rpc --address) or an embedded demo."""
    from phalanx.chain.ledger import make_ledger

    if rpc is not None:
        from phalanx.chain.rpc import RpcLedger

        if address is None:
            raise typer.BadParameter("--rpc needs --address")
        _print_state(RpcLedger.attach(rpc, address))
        return
    import random

    from eth_account import Account

    from phalanx.chain.driver import RoundDriver

    params = _params(1.0, 5, 1, 20, 11, 10, 1)
    rng = random.Random(seed)
    accounts = [Account.from_key(rng.getrandbits(256).to_bytes(32, "big"))
                for _ in range(peers + 1)]
    genesis = rng.getrandbits(256).to_bytes(32, "big")
    led = make_ledger("embedded", params=params, deployer=accounts[0], pool=10 * ETH,
                      genesis_seed=genesis)
    drv = RoundDriver(led, rng)
    drv.register_all(accounts[1:], [ETH * (1 + i % 5) for i in range(peers)])
    for _ in range(demo_rounds):
        res = drv.play_round(vote=lambda v: True)
        s = res.settlement
        typer.echo(f"round {s.round}: stands={s.stands} accepted={s.accepted} "
                   f"paid={s.paid / ETH:.4f} ETH slashes={len(s.slashes)}")
    _print_state(led)


def _print_state(led: ContractLedger) -> None:
    s = led.get_round_state()
    p = led.params
    roles = led.get_roles()
    typer.echo(f"task {led.address}: m={p.committee_size} t={p.threshold} "
               f"proposers={p.n_proposers} voters={p.n_voters} rounds={p.rounds} "
               f"min_stake={p.min_stake / ETH:g} ETH")
    typer.echo(f"round {s.round} phase={s.phase.name} block={s.block} "
               f"round_start={s.round_start} rounds_left={s.rounds_left}")
    typer.echo(f"pool={s.pool / ETH:.6f} ETH total_stake={s.total_stake / ETH:.6f} ETH "
               f"peers={s.peers} roles_drawn={s.roles_drawn}")
    typer.echo(f"model={s.model_hash.hex()} seed={s.seed.hex()}")
    if s.roles_drawn:
        typer.echo(f"committee={list(roles.committee)}")
