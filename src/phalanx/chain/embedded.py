"""The ``embedded`` ledger backend: the contract in titanoboa's in-process py-evm (the default).

Each ledger owns a fresh ``boa.Env`` (no global state), deploys ``contracts/Phalanx.vy`` into it
and drives it with the same ABI calls the ``rpc`` backend sends. Blocks only advance through
:meth:`EmbeddedLedger.mine`; transactions do not mine blocks here (on anvil each one does).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boa
from boa.contracts.base_evm_contract import BoaError
from eth_account.signers.local import LocalAccount

from phalanx.chain.ledger import ContractLedger, Event, get_contract_source
from phalanx.chain.model import Reverted, TaskParams
from phalanx.errors import ConfigError


@lru_cache(maxsize=1)
def get_deployer() -> Any:
    """The compiled contract (compiled once per process, ~1.5 s)."""
    return boa.loads_partial(get_contract_source(), name="Phalanx", filename="Phalanx.vy")


def compute_revert_reason(err: BoaError) -> str:
    """The ``# dev:`` reason of a boa revert, or its VM error text."""
    dev = err.stack_trace.dev_reason
    if dev is not None:
        return str(dev.reason_str)
    return str(err).splitlines()[0][:200]


class EmbeddedLedger(ContractLedger):
    """The contract inside an in-process EVM."""

    def __init__(self, env: Any, contract: Any, params: TaskParams) -> None:
        self.env = env
        self.contract = contract
        self.params = params
        self.address = str(contract.address)
        self.gas_log = []

    @classmethod
    def deploy(
        cls, params: TaskParams, *, deployer: LocalAccount, pool: int, genesis_seed: bytes,
        initial_model: bytes, env: Any = None,
    ) -> EmbeddedLedger:
        """Deploy a task into ``env`` (a fresh ``boa.Env`` by default)."""
        env = env if env is not None else boa.Env()
        env.set_balance(deployer.address, env.get_balance(deployer.address) + pool)
        try:
            contract = get_deployer().deploy(params.as_tuple(), genesis_seed, initial_model,
                                             value=pool, env=env, sender=deployer.address)
        except BoaError as e:
            raise ConfigError(f"task rejected by the contract: "
                              f"{compute_revert_reason(e)}") from e
        return cls(env, contract, params)

    def _transact(self, fn: str, sender: LocalAccount, *args: Any, value: int = 0) -> list[Event]:
        method = getattr(self.contract, fn)
        self.env._reset_access_counters()  # every transaction starts cold, as on a chain
        try:
            method(*args, sender=sender.address, value=value)
        except BoaError as e:
            raise Reverted(compute_revert_reason(e), f"{fn} from {sender.address}") from e
        computation = self.contract._computation
        self.gas_log.append((fn, int(computation.get_gas_used())))
        events: list[Event] = []
        for log in self.contract.get_logs(computation):
            if hasattr(log, "_asdict"):
                events.append((type(log).__name__, log._asdict()))
        return events

    def _call(self, fn: str, *args: Any) -> Any:
        return getattr(self.contract, fn)(*args)

    def get_block(self) -> int:
        return int(self.env.evm.patch.block_number)

    def mine(self, blocks: int) -> None:
        if blocks < 0:
            raise ConfigError(f"blocks={blocks} must be >= 0")
        self.env.time_travel(blocks=blocks)

    def get_balance(self, address: str) -> int:
        return int(self.env.get_balance(address))

    def faucet(self, address: str, amount: int) -> None:
        self.env.set_balance(address, amount)
