"""The ``Ledger`` interface a round of the protocol calls (protocol.md §4), and its factory.

Two backends run the same bytecode of ``contracts/Phalanx.vy``: ``embedded`` (titanoboa's
in-process py-evm, the default, no setup) and ``rpc`` (web3.py against any Ethereum JSON-RPC
node, one private key per peer). Peers are eth-account ``LocalAccount`` objects. Everything
that is the same for both backends lives in :class:`ContractLedger`; a backend supplies
``_transact`` / ``_call`` / block access.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount

from phalanx.chain.model import (
    EMPTY,
    Outcome,
    Phase,
    Settlement,
    SlashReason,
    TaskParams,
    compute_audit_commitment,
    compute_beacon_commitment,
    compute_vote_commitment,
)
from phalanx.errors import ConfigError, Reject

#: Reason codes posted with rejected clients: the position of the member in ``Reject``.
REASON_CODES: dict[Reject, int] = {r: i for i, r in enumerate(Reject)}
REASONS: dict[int, Reject] = {i: r for r, i in REASON_CODES.items()}


def get_contract_source() -> str:
    """The Vyper source shipped inside the package (``phalanx/contracts/Phalanx.vy``)."""
    return resources.files("phalanx").joinpath("contracts/Phalanx.vy").read_text()


@dataclass(frozen=True, slots=True)
class Roles:
    """The disjoint roles of one round, in seat order."""

    round: int
    committee: tuple[str, ...]
    proposers: tuple[str, ...]
    voters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Attestation:
    """What a committee member attests: the result hash and the MPC evidence (§3.4).

    ``accepted``: the proposers whose inputs were delivered and counted in the result (only
    these are paid; a proposer that posted a bundle and is in neither list is slashed σ_p as
    undelivered). The ledger sends every list in canonical (increasing address) order, so two
    members' equal evidence is byte-identical whatever order they built it in.
    """

    result: bytes
    rejected: tuple[tuple[str, Reject], ...] = ()
    servers: tuple[str, ...] = ()
    accepted: tuple[str, ...] = ()

    def canonical(self) -> tuple[list[str], list[str], list[int], list[str]]:
        """(accepted, rejected, reason codes, servers), each sorted by address value."""
        def key(a: str) -> int:
            return int(a, 16)

        rejected = sorted(self.rejected, key=lambda x: key(x[0]))
        return (sorted(self.accepted, key=key), [a for a, _ in rejected],
                [REASON_CODES[r] for _, r in rejected], sorted(self.servers, key=key))


@dataclass(frozen=True, slots=True)
class RoundState:
    """A snapshot of the task and its current round."""

    round: int
    phase: Phase
    block: int
    round_start: int
    seed: bytes
    model_hash: bytes
    pool: int
    rounds_left: int
    total_stake: int
    peers: int
    roles_drawn: bool
    winning: bytes


class Ledger(Protocol):
    """What the protocol needs from the chain (protocol.md §4)."""

    address: str
    params: TaskParams

    def register(self, peer: LocalAccount, stake: int, x25519: bytes, endpoint: str) -> None: ...
    def fund(self, sender: LocalAccount, amount: int) -> None: ...
    def unbond(self, peer: LocalAccount) -> None: ...
    def withdraw(self, peer: LocalAccount) -> int: ...
    def commit_beacon(self, peer: LocalAccount, secret: bytes) -> None: ...
    def may_commit_beacon(self, address: str) -> bool: ...
    def reveal_beacon(self, peer: LocalAccount, secret: bytes) -> None: ...
    def close_beacon(self, peer: LocalAccount) -> None: ...
    def get_roles(self) -> Roles: ...
    def post_bundle(self, peer: LocalAccount, root: bytes) -> None: ...
    def attest(self, peer: LocalAccount, attestation: Attestation) -> None: ...
    def commit_vote(self, peer: LocalAccount, accept: bool, salt: bytes) -> None: ...
    def reveal_vote(self, peer: LocalAccount, accept: bool, salt: bytes) -> None: ...
    def settle(self, sender: LocalAccount) -> Settlement: ...
    def get_stake(self, address: str) -> int: ...
    def get_x25519(self, address: str) -> bytes: ...
    def get_endpoint(self, address: str) -> str: ...
    def get_bundle(self, r: int, address: str) -> bytes: ...
    def post_response(self, peer: LocalAccount, root: bytes) -> None: ...
    def get_response(self, r: int, address: str) -> bytes: ...
    def get_result(self, r: int) -> bytes: ...
    def get_balance(self, address: str) -> int: ...
    def get_round_state(self) -> RoundState: ...
    def compute_sortition(self, seed: bytes, r: int) -> list[str]: ...
    def mine(self, blocks: int) -> None: ...
    def advance_to(self, phase: Phase) -> None: ...
    def faucet(self, address: str, amount: int) -> None: ...
    def get_phase_end(self, phase: Phase) -> int: ...
    def reclaim(self, funder: LocalAccount) -> int: ...
    def audit_commit(self, auditor: LocalAccount, bad: bool, salt: bytes) -> None: ...
    def audit_reveal(self, auditor: LocalAccount, bad: bool, salt: bytes) -> None: ...


Event = tuple[str, dict[str, Any]]


class ContractLedger(ABC):
    """The backend-independent half of a ledger: encodes calls, decodes events."""

    address: str
    params: TaskParams
    #: (function name, gas used) of every transaction sent, in order
    gas_log: list[tuple[str, int]]
    _chain_id: int | None = None

    # -- backend primitives -----------------------------------------------------------------
    @abstractmethod
    def _transact(self, fn: str, sender: LocalAccount, *args: Any, value: int = 0) -> list[Event]:
        """Send a transaction; raise ``Reverted``; return the decoded events."""

    @abstractmethod
    def _call(self, fn: str, *args: Any) -> Any:
        """Evaluate a view function."""

    @abstractmethod
    def get_block(self) -> int:
        """The number of the block the next transaction will see."""

    @abstractmethod
    def mine(self, blocks: int) -> None:
        """Advance the chain by ``blocks`` blocks (dev chains; on a live chain, wait)."""

    @abstractmethod
    def get_balance(self, address: str) -> int:
        """Native-coin balance of ``address``."""

    @abstractmethod
    def faucet(self, address: str, amount: int) -> None:
        """Set ``address``'s balance (dev chains only)."""

    # -- stake ------------------------------------------------------------------------------
    def register(self, peer: LocalAccount, stake: int, x25519: bytes, endpoint: str) -> None:
        """Register ``peer`` with ``stake`` wei, its X25519 key and endpoint."""
        if len(x25519) != 32:
            raise ConfigError(f"x25519 key must be 32 bytes, got len={len(x25519)}")
        self._transact("register", peer, x25519, endpoint, value=stake)

    def fund(self, sender: LocalAccount, amount: int) -> None:
        """Add ``amount`` wei to the reward pool."""
        self._transact("fund", sender, value=amount)

    def unbond(self, peer: LocalAccount) -> None:
        """Stop being drawn after this round."""
        self._transact("unbond", peer)

    def withdraw(self, peer: LocalAccount) -> int:
        """Withdraw the whole stake; returns the amount paid."""
        events = self._transact("withdraw", peer)
        return sum(int(e["amount"]) for name, e in events if name == "Withdrawn")

    def reclaim(self, funder: LocalAccount) -> int:
        """After the last round: pay ``funder`` its share of the leftover pool."""
        events = self._transact("reclaim", funder)
        return sum(int(e["amount"]) for name, e in events if name == "Reclaimed")

    # -- commitments bind the chain and the task --------------------------------------------
    @property
    def chain_id(self) -> int:
        """The chain id the contract sees (read once)."""
        if self._chain_id is None:
            self._chain_id = int(self._call("get_chain_id"))
        return self._chain_id

    # -- beacon -----------------------------------------------------------------------------
    def _beacon_target(self) -> int:
        r, start = int(self._call("round")), int(self._call("round_start"))
        return r + (0 if self.get_block() < start else 1)

    def commit_beacon(self, peer: LocalAccount, secret: bytes) -> None:
        """Commit to ``secret`` for the next round's beacon (binds it to the peer and round)."""
        target = self._beacon_target()
        self._transact("commit_beacon", peer, compute_beacon_commitment(
            secret, peer.address, target, self.chain_id, self.address))

    def may_commit_beacon(self, address: str) -> bool:
        """Whether ``address`` may commit a beacon secret now (registration: the first k
        registered peers; afterwards: the current round's role holders, once drawn)."""
        return bool(self._call("can_commit_beacon", address))

    def reveal_beacon(self, peer: LocalAccount, secret: bytes) -> None:
        """Reveal this round's beacon secret."""
        self._transact("reveal_beacon", peer, secret)

    def close_beacon(self, peer: LocalAccount) -> None:
        """Fix the seed and store the roles (after the beacon phase)."""
        self._transact("close_beacon", peer)

    def get_roles(self) -> Roles:
        """The roles of the current round (empty tuples until drawn)."""
        c, p, v = self._call("get_roles")
        r = int(self._call("round"))
        return Roles(r, tuple(map(str, c)), tuple(map(str, p)), tuple(map(str, v)))

    # -- proposers, committee, voters -------------------------------------------------------
    def post_bundle(self, peer: LocalAccount, root: bytes) -> None:
        """Commit the hash of the proposer's sealed bundles."""
        self._transact("post_bundle", peer, root)

    def attest(self, peer: LocalAccount, attestation: Attestation) -> None:
        """Post the result hash with rejected clients (and reasons) and identified servers."""
        accepted, rejected, reasons, servers = attestation.canonical()
        self._transact("attest", peer, attestation.result, accepted, rejected, reasons, servers)

    def commit_vote(self, peer: LocalAccount, accept: bool, salt: bytes) -> None:
        """Commit a vote (hiding until the reveal phase)."""
        r = int(self._call("round"))
        self._transact("commit_vote", peer, compute_vote_commitment(
            r, accept, salt, peer.address, self.chain_id, self.address))

    def reveal_vote(self, peer: LocalAccount, accept: bool, salt: bytes) -> None:
        """Reveal the committed vote."""
        self._transact("reveal_vote", peer, accept, salt)

    def audit_commit(self, auditor: LocalAccount, bad: bool, salt: bytes) -> None:
        """The auditor (the deployer) hides its verdict on this round's candidate."""
        r = int(self._call("round"))
        self._transact("audit_commit", auditor, compute_audit_commitment(
            r, bad, salt, self.chain_id, self.address))

    def audit_reveal(self, auditor: LocalAccount, bad: bool, salt: bytes) -> None:
        """The auditor opens its verdict after the votes (bad: accepters are slashed)."""
        self._transact("audit_reveal", auditor, bad, salt)

    def settle(self, sender: LocalAccount) -> Settlement:
        """Settle the round; returns what was paid and slashed (from the events)."""
        return _decode_settlement(self._transact("settle", sender))

    # -- reads ------------------------------------------------------------------------------
    def get_stake(self, address: str) -> int:
        """Current stake of ``address`` (0 if not registered)."""
        return int(self._call("stake_of", address))

    def get_x25519(self, address: str) -> bytes:
        """The X25519 public key ``address`` registered (32 zero bytes if none)."""
        return bytes(self._call("x25519_of", address))

    def get_endpoint(self, address: str) -> str:
        """The endpoint ``address`` registered ('' if none)."""
        return str(self._call("endpoint_of", address))

    def get_result(self, r: int) -> bytes:
        """The result hash (the candidate model) of round ``r``'s standing attestation, or 32
        zero bytes while none stands (``winning`` is the hash of the whole attestation)."""
        winning = bytes(self._call("winning", r))
        return EMPTY if winning == EMPTY else bytes(self._call("ev_result", winning))

    def post_response(self, peer: LocalAccount, root: bytes) -> None:
        """A proposer posts its part-2 root inside the response window (start of ATTEST)."""
        self._transact("post_response", peer, root)

    def get_response(self, r: int, address: str) -> bytes:
        """The part-2 root ``address`` posted in round ``r`` (zeros when none)."""
        return bytes(self._call("response_of", r, address))

    def get_bundle(self, r: int, address: str) -> bytes:
        """The commitment ``address`` posted in round ``r`` (32 zero bytes if none)."""
        return bytes(self._call("bundle_of", r, address))

    def compute_sortition(self, seed: bytes, r: int) -> list[str]:
        """The contract's sortition view."""
        return [str(a) for a in self._call("compute_sortition", seed, r)]

    def _calls(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several view functions (a backend may send them at once)."""
        return [self._call(fn, *args) for fn, args in calls]

    def get_round_state(self) -> RoundState:
        """A snapshot of the round: two batches of view calls, the second re-reading the
        round so that a settlement between them is seen (and the snapshot taken again)."""
        names = ("round", "get_phase", "round_start", "seed", "model_hash", "pool",
                 "rounds_left", "total_stake", "peer_count", "roles_drawn")
        while True:
            v = dict(zip(names, self._calls([(n, ()) for n in names]), strict=True))
            r = int(v["round"])
            winning, again = self._calls([("winning", (r,)), ("round", ())])
            if int(again) == r:
                break
        return RoundState(
            round=r, phase=Phase(int(v["get_phase"])), block=self.get_block(),
            round_start=int(v["round_start"]), seed=bytes(v["seed"]),
            model_hash=bytes(v["model_hash"]), pool=int(v["pool"]),
            rounds_left=int(v["rounds_left"]), total_stake=int(v["total_stake"]),
            peers=int(v["peer_count"]), roles_drawn=bool(v["roles_drawn"]),
            winning=bytes(winning),
        )

    def get_phase_end(self, phase: Phase) -> int:
        """The first block after ``phase`` in the current round."""
        p = self.params
        lengths = [0, p.beacon_blocks, p.propose_blocks, p.attest_blocks, p.commit_blocks,
                   p.reveal_blocks]
        return int(self._call("round_start")) + sum(lengths[: int(phase) + 1])

    def advance_to(self, phase: Phase) -> None:
        """Mine until the current round is in ``phase`` (never goes backwards)."""
        if phase == Phase.FINISHED or phase == Phase.REGISTRATION:
            raise ConfigError(f"cannot advance to phase={phase.name}")
        start = self.get_phase_end(Phase(int(phase) - 1))
        now = self.get_block()
        if now < start:
            self.mine(start - now)


def _decode_settlement(events: Sequence[Event]) -> Settlement:
    out: Settlement | None = None
    rewards: dict[str, int] = {}
    slashes: list[tuple[str, SlashReason, int]] = []
    for name, e in events:
        if name == "Rewarded":
            rewards[str(e["peer"])] = int(e["amount"])
        elif name == "Slashed":
            slashes.append((str(e["peer"]), SlashReason(int(e["reason"])), int(e["amount"])))
        elif name == "RoundSettled":
            out = Settlement(
                round=int(e["round"]), stands=bool(e["stands"]), accepted=bool(e["accepted"]),
                model=bytes(e["model"]), accept_stake=int(e["accept_stake"]),
                reject_stake=int(e["reject_stake"]), budget=int(e["budget"]),
                paid=int(e["paid"]), outcome=Outcome(int(e["outcome"])),
            )
    if out is None:
        raise ValueError("settle() emitted no RoundSettled event")
    out.rewards, out.slashes = rewards, slashes
    return out


def make_ledger(
    backend: str = "embedded",
    *,
    params: TaskParams,
    deployer: LocalAccount,
    pool: int,
    genesis_seed: bytes | None = None,
    initial_model: bytes = EMPTY,
    rpc_url: str | None = None,
    address: str | None = None,
) -> ContractLedger:
    """Deploy (or, for ``rpc`` with ``address``, attach to) a task and return its ledger.

    ``embedded``: a fresh in-process EVM (its own ``boa.Env``, nothing global); the deployer is
    funded with ``pool`` first. ``rpc``: ``rpc_url`` is required; the deployer pays the pool.
    ``model``: the pure mirror, no EVM (for fast incentive simulations).
    """
    params.check()  # ConfigError naming the parameter, its value and the contract's cap
    seed = genesis_seed if genesis_seed is not None else secrets.token_bytes(32)
    if backend == "embedded":
        from phalanx.chain.embedded import EmbeddedLedger

        return EmbeddedLedger.deploy(params, deployer=deployer, pool=pool, genesis_seed=seed,
                                     initial_model=initial_model)
    if backend == "model":
        from phalanx.chain.mirror import MirrorLedger

        return MirrorLedger.deploy(params, deployer=deployer, pool=pool, genesis_seed=seed,
                                   initial_model=initial_model)
    if backend == "rpc":
        from phalanx.chain.rpc import RpcLedger

        if rpc_url is None:
            raise ConfigError("backend='rpc' needs rpc_url")
        if address is not None:
            return RpcLedger.attach(rpc_url, address)
        return RpcLedger.deploy(rpc_url, params, deployer=deployer, pool=pool,
                                genesis_seed=seed, initial_model=initial_model)
    raise ConfigError(f"unknown ledger backend={backend!r} (expected embedded, rpc or model)")
