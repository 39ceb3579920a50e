"""CLI commands of phalanx.chain: ``phalanx chain deploy`` and ``phalanx chain status``.

Every expected failure is one ``error:`` line naming the option and its value, exit code 2
(cli/errors.py): options are checked before any node is contacted, a key that does not parse
is named without being echoed, and a node that does not answer is a ChainError.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

from phalanx.cli.errors import one_line_errors
from phalanx.errors import ConfigError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from phalanx.chain.ledger import ContractLedger
    from phalanx.chain.model import TaskParams

ETH = 10**18
#: the demo task of ``chain status`` without --rpc: (committee, threshold, proposers, voters,
#: rounds)
DEMO_TASK = (5, 1, 20, 11, 10)


def register(app: typer.Typer) -> None:
    """Add this module's commands to app (a ``chain`` group)."""
    chain = typer.Typer(help="The on-chain ledger (Vyper contract): deploy, status.",
                        no_args_is_help=True)
    chain.command("deploy")(deploy)
    chain.command("status")(status)
    app.add_typer(chain, name="chain")


def check_task_options(pool: float, min_stake: float, committee: int, threshold: int,
                       proposers: int, voters: int, rounds: int, phase_blocks: int) -> None:
    """The contract constructor's checks (Phalanx.vy ``__init__``), as ConfigErrors naming the
    option, before anything is sent."""
    from phalanx.chain.model import MAX_COMMITTEE, MAX_PROPOSERS, MAX_ROLES, MAX_VOTERS

    if not pool >= 0:
        raise ConfigError(f"pool={pool} must be >= 0 (ETH)")
    if not min_stake * ETH >= 1:
        raise ConfigError(f"min_stake={min_stake} must be > 0 (ETH, at least 1 wei)")
    if threshold < 1:
        raise ConfigError(f"threshold={threshold} must be >= 1")
    if not 3 * threshold + 1 <= committee <= MAX_COMMITTEE:
        raise ConfigError(f"committee={committee} must be in [3*threshold+1={3 * threshold + 1}, "
                          f"{MAX_COMMITTEE}]")
    if not 1 <= proposers <= MAX_PROPOSERS:
        raise ConfigError(f"proposers={proposers} must be in [1, {MAX_PROPOSERS}]")
    if not 1 <= voters <= MAX_VOTERS:
        raise ConfigError(f"voters={voters} must be in [1, {MAX_VOTERS}]")
    if committee + proposers + voters > MAX_ROLES:
        raise ConfigError(f"committee={committee} + proposers={proposers} + voters={voters} "
                          f"must be <= {MAX_ROLES} seats")
    if rounds < 1:
        raise ConfigError(f"rounds={rounds} must be >= 1")
    if phase_blocks < 1:
        raise ConfigError(f"phase_blocks={phase_blocks} must be >= 1")


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

    source = "--key" if key else "$PHALANX_KEY"
    key = key or os.environ.get("PHALANX_KEY")
    if key:
        try:
            acct: LocalAccount = Account.from_key(key)
        except Exception as e:  # eth-keys raises ValueError or binascii.Error; never echo a key
            raise ConfigError(f"{source} is not a secp256k1 private key (32 bytes as 64 hex "
                              f"digits, optionally 0x-prefixed; got {len(key)} characters)"
                              ) from e
        return acct
    acct = Account.create()
    if rpc is not None:
        from web3.types import RPCEndpoint

        from phalanx.chain.rpc import RpcLedger

        resp = RpcLedger.connect(rpc).provider.make_request(
            RPCEndpoint("anvil_setBalance"), [acct.address, hex(10**6 * ETH)])
        if "error" in resp:
            raise ConfigError(f"no --key given and the node at rpc={rpc!r} is not a dev node "
                              "(anvil_setBalance failed)")
    return acct


@one_line_errors
def deploy(
    rpc: str = typer.Option(None, "--rpc", help="JSON-RPC URL, e.g. http://127.0.0.1:8545 "
                            "(required)"),
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

    if rpc is None:
        raise ConfigError("rpc is missing: chain deploy needs --rpc URL (e.g. "
                          "http://127.0.0.1:8545)")
    check_rpc_url(rpc)
    check_task_options(pool, min_stake, committee, threshold, proposers, voters, rounds,
                       phase_blocks)
    params = _params(min_stake, committee, threshold, proposers, voters, rounds, phase_blocks)
    deployer = _account(key, rpc)
    led = make_ledger("rpc", params=params, deployer=deployer, pool=int(pool * ETH), rpc_url=rpc)
    typer.echo(f"deployed Phalanx task at {led.address} (deployer {deployer.address}, "
               f"gas {led.gas_log[-1][1] if led.gas_log else 'n/a'})")
    _print_state(led)


def check_rpc_url(rpc: str) -> None:
    """An http(s) or ws(s) URL (the node itself is contacted later)."""
    from urllib.parse import urlparse

    url = urlparse(rpc)
    if url.scheme not in ("http", "https", "ws", "wss") or not url.netloc:
        raise ConfigError(f"rpc={rpc!r} must be an http(s):// or ws(s):// URL, e.g. "
                          "http://127.0.0.1:8545")


def check_address(address: str) -> None:
    """A 20-byte hex address (0x + 40 hex digits)."""
    from eth_utils.address import is_hex_address

    if not is_hex_address(address):
        raise ConfigError(f"address={address!r} must be 0x followed by 40 hex digits")


@one_line_errors
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

        check_rpc_url(rpc)
        if address is None:
            raise ConfigError(f"rpc={rpc!r} needs --address (the task contract's address)")
        check_address(address)
        _print_state(RpcLedger.attach(rpc, address))
        return
    check_demo_options(address, demo_rounds, peers, seed)
    import random

    from eth_account import Account

    from phalanx.chain.driver import RoundDriver

    committee, threshold, proposers, voters, rounds = DEMO_TASK
    params = _params(1.0, committee, threshold, proposers, voters, rounds, 1)
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


def check_demo_options(address: str | None, demo_rounds: int, peers: int, seed: int) -> None:
    """The embedded demo's options (--address belongs to --rpc)."""
    from phalanx.chain.model import MAX_PEERS

    committee, _, proposers, voters, rounds = DEMO_TASK
    if address is not None:
        raise ConfigError(f"address={address!r} needs --rpc (without it the status is of an "
                          "embedded demo task)")
    if not 0 <= demo_rounds <= rounds:
        raise ConfigError(f"demo_rounds={demo_rounds} must be in [0, {rounds}] (the demo "
                          "task's rounds)")
    seats = committee + proposers + voters
    if not seats <= peers <= MAX_PEERS:
        raise ConfigError(f"peers={peers} must be in [{seats}, {MAX_PEERS}]: the demo task "
                          f"draws {seats} seats (committee {committee} + proposers {proposers} "
                          f"+ voters {voters}) per round")
    if seed < 0:
        raise ConfigError(f"seed={seed} must be >= 0")


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
