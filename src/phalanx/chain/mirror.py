"""A third ledger backend, ``model``: the pure mirror (``chain/model.py``) behind ``Ledger``.

It runs no EVM, so it is ~100x faster than ``embedded``; because the model is bit-identical to
the contract (differential tests), simulations of the incentive layer (``benchmarks/economics.py``)
use it. Balances are book-kept here; ``mine`` moves the model's block number.
"""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount

from phalanx.chain.ledger import ContractLedger, Event
from phalanx.chain.model import (
    MODEL_ADDRESS,
    MODEL_CHAIN_ID,
    LedgerModel,
    Reverted,
    Settlement,
    TaskParams,
    checksum,
)
from phalanx.errors import ConfigError


class MirrorLedger(ContractLedger):
    """``LedgerModel`` behind the ``Ledger`` interface."""

    def __init__(self, model: LedgerModel, balances: dict[str, int]) -> None:
        self.model = model
        self.params = model.params
        self.address = model.address
        self.balances = balances
        self.gas_log = []

    @classmethod
    def deploy(
        cls, params: TaskParams, *, deployer: LocalAccount, pool: int, genesis_seed: bytes,
        initial_model: bytes, block: int = 1,
    ) -> MirrorLedger:
        """Create the mirrored task at ``block``."""
        try:
            model = LedgerModel.create(params, pool=pool, genesis_seed=genesis_seed,
                                       initial_model=initial_model, block=block,
                                       deployer=checksum(deployer.address),
                                       chain_id=MODEL_CHAIN_ID, address=checksum(MODEL_ADDRESS))
        except Reverted as e:
            raise ConfigError(f"task rejected by the contract: {e.reason}") from e
        return cls(model, {})

    def _pay(self, sender: str, value: int) -> None:
        if self.balances.get(sender, 0) < value:
            raise Reverted("insufficient funds", f"{sender} has {self.balances.get(sender, 0)}")
        self.balances[sender] = self.balances.get(sender, 0) - value

    def _transact(self, fn: str, sender: LocalAccount, *args: Any, value: int = 0) -> list[Event]:
        a = checksum(sender.address)
        self._pay(a, value)
        try:
            if fn == "register":
                self.model.register(a, value, *args)
            elif fn == "fund":
                self.model.fund(a, value)
            else:
                getattr(self.model, fn)(a, *args)
        except Reverted:
            self.balances[a] += value
            raise
        return []

    def withdraw(self, peer: LocalAccount) -> int:
        a = checksum(peer.address)
        amount = self.model.withdraw(a)
        self.balances[a] = self.balances.get(a, 0) + amount
        return amount

    def reclaim(self, funder: LocalAccount) -> int:
        a = checksum(funder.address)
        amount = self.model.reclaim(a)
        self.balances[a] = self.balances.get(a, 0) + amount
        return amount

    def settle(self, sender: LocalAccount) -> Settlement:
        return self.model.settle(checksum(sender.address))

    def _call(self, fn: str, *args: Any) -> Any:
        m = self.model
        if fn == "get_roles":
            return m.committee, m.proposers, m.voters
        if fn == "get_phase":
            return int(m.get_phase())
        if fn == "peer_count":
            return m.peer_count
        if fn == "get_chain_id":
            return m.chain_id
        if fn == "can_commit_beacon":
            return m.can_commit_beacon(checksum(args[0]))
        if fn == "stake_of":
            return m.stake_of.get(checksum(args[0]), 0)
        if fn == "winning":
            return m.winning.get(args[0], b"\x00" * 32)
        if fn in ("x25519_of", "endpoint_of"):
            default = b"\x00" * 32 if fn == "x25519_of" else ""
            return getattr(m, fn).get(checksum(args[0]), default)
        if fn == "ev_result":
            return m.evidence[args[0]].result
        if fn == "response_of":
            return m.response_of.get((args[0], checksum(args[1])), b"\x00" * 32)
        if fn == "bundle_of":
            return m.bundle_of.get((args[0], checksum(args[1])), b"\x00" * 32)
        if fn == "weight_of":
            return m.weight_of.get(args[0], 0)
        if fn == "compute_sortition":
            return m.compute_sortition(args[0], args[1])
        return getattr(m, fn)

    def get_block(self) -> int:
        return self.model.block

    def mine(self, blocks: int) -> None:
        if blocks < 0:
            raise ConfigError(f"blocks={blocks} must be >= 0")
        self.model.block += blocks

    def get_balance(self, address: str) -> int:
        return self.balances.get(checksum(address), 0)

    def faucet(self, address: str, amount: int) -> None:
        self.balances[checksum(address)] = amount
