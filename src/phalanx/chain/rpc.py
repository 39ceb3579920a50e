"""The ``rpc`` ledger backend: the same bytecode on any Ethereum JSON-RPC node (web3.py).

Each peer signs its own transactions with its eth-account key. Views are evaluated against the
``pending`` block, i.e. the block the next transaction lands in, so that ``get_phase()`` agrees
with what a transaction will see. On dev nodes (anvil) :meth:`RpcLedger.mine` uses
``anvil_mine`` / ``evm_mine`` and :meth:`faucet` ``anvil_setBalance``; on a live chain ``mine``
waits for blocks and ``faucet`` is refused.

Reverts: a failing call is re-run with ``debug_traceCall`` when the node offers it; the pc of
the REVERT is mapped through Vyper's source map to the ``# dev:`` comment of the failing
``assert``, so the ``rpc`` backend raises the same :class:`Reverted` reasons as ``embedded``.
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception, Web3RPCError
from web3.types import RPCEndpoint

from phalanx.chain.jsonrpc import JsonRpcClient
from phalanx.chain.ledger import ContractLedger, Event, get_contract_source
from phalanx.chain.model import Reverted, TaskParams
from phalanx.chain.views import EventCodec, ViewCodec
from phalanx.errors import ChainError, ConfigError

_DEV = re.compile(r"#\s*dev:\s*(.+?)\s*$")
BLOCK_WAIT_S = 1.0  # poll interval while waiting for blocks on a live chain
RECEIPT_POLL_S = 0.005  # poll interval while waiting for a transaction's receipt
RECEIPT_TIMEOUT_S = 120.0
PRIORITY_FEE_WEI = 10**9  # the tip of every transaction (1 gwei)


@lru_cache(maxsize=1)
def get_artifacts() -> dict[str, Any]:
    """ABI, init bytecode and the runtime pc → source line map of the contract."""
    import vyper

    src = get_contract_source()
    out = vyper.compile_code(src, output_formats=["abi", "bytecode", "source_map_runtime"])
    pcs = sorted((int(pc), int(pos[0])) for pc, pos in out["source_map_runtime"]["pc_pos_map"]
                 .items() if pos is not None and pos[0] is not None)
    return {"abi": out["abi"], "bytecode": out["bytecode"], "pc_lines": pcs,
            "lines": src.splitlines()}


def compute_dev_reason(pc: int) -> str:
    """The ``# dev:`` comment on the source line of runtime ``pc`` ("" when none)."""
    art = get_artifacts()
    pcs = art["pc_lines"]
    i = bisect.bisect_right(pcs, (pc, 1 << 30)) - 1
    if i < 0:
        return ""
    line = art["lines"][pcs[i][1] - 1]
    m = _DEV.search(line)
    return m.group(1) if m else ""


def gas_limit(estimate: int) -> int:
    """The gas to send with a transaction estimated at ``estimate``: twice that, at least
    300,000 more, at most 29 M. Peers transact concurrently: a call estimated before another
    peer's lands can cost more when it runs (the attestation that makes a result stand does
    the round's bookkeeping), and an estimate + 20% ran out of gas (reverted with no reason)
    on anvil. Unused gas is refunded."""
    return min(max(2 * estimate, estimate + 300_000), 29_000_000)


class RpcLedger(ContractLedger):
    """The contract on a JSON-RPC node."""

    def __init__(self, w3: Web3, address: str, params: TaskParams) -> None:
        self.w3 = w3
        self.address = address
        self.params = params
        self.contract = w3.eth.contract(address=Web3.to_checksum_address(address),
                                        abi=get_artifacts()["abi"])
        self._chain_id = int(w3.eth.chain_id)
        self.gas_log = []
        self._nonces: dict[str, int] = {}
        self._views = ViewCodec(get_artifacts()["abi"])
        self._events = EventCodec(get_artifacts()["abi"])
        #: the hot path (views, transactions, receipts, mining): chain/jsonrpc.py
        self.rpc = JsonRpcClient(str(w3.provider.endpoint_uri),  # type: ignore[attr-defined]
                                 timeout=30)

    @staticmethod
    def connect(url: str) -> Web3:
        """A web3 handle on ``url``; raises ChainError when the node does not answer."""
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        if not w3.is_connected():
            raise ChainError(f"no JSON-RPC node answers at rpc_url={url!r}")
        return w3

    @classmethod
    def deploy(
        cls, url: str, params: TaskParams, *, deployer: LocalAccount, pool: int,
        genesis_seed: bytes, initial_model: bytes,
    ) -> RpcLedger:
        """Deploy a task at ``url``, paid by ``deployer`` (which also pays the pool)."""
        params.validate()
        w3 = cls.connect(url)
        art = get_artifacts()
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        ctor = factory.constructor(params.as_tuple(), genesis_seed, initial_model)
        base = {"from": deployer.address, "value": pool}
        try:
            gas = ctor.estimate_gas(base)
        except (ContractLogicError, ValueError) as e:
            raise ConfigError(f"task rejected by the contract: {e}") from e
        tx = ctor.build_transaction({**base, "gas": gas + gas // 5 + 10_000,
                                     "nonce": w3.eth.get_transaction_count(deployer.address,
                                                                           "pending")})
        receipt = _send(w3, deployer, tx)
        if receipt["status"] != 1:
            raise ChainError(f"deployment failed: gas used {receipt['gasUsed']} of {tx['gas']}")
        led = cls(w3, str(receipt["contractAddress"]), params)
        led.gas_log.append(("deploy", int(receipt["gasUsed"])))
        return led

    @classmethod
    def attach(cls, url: str, address: str) -> RpcLedger:
        """A ledger on an already deployed task."""
        w3 = cls.connect(url)
        probe = w3.eth.contract(address=Web3.to_checksum_address(address),
                                abi=get_artifacts()["abi"])
        try:
            raw = probe.functions.params().call()
        except (Web3Exception, ValueError) as e:
            raise ChainError(f"no Phalanx task at address={address}") from e
        return cls(w3, address, TaskParams(*[int(x) for x in raw]))

    # -- primitives -------------------------------------------------------------------------
    def _next_nonce(self, address: str) -> int:
        """The sender's next nonce, cached (one node query per sender)."""
        n = self._nonces.get(address)
        if n is None:
            n = int(self.w3.eth.get_transaction_count(Web3.to_checksum_address(address),
                                                      "pending"))
        self._nonces[address] = n + 1
        return n

    def _fees(self) -> dict[str, int]:
        """EIP-1559 fees: at most twice the latest base fee plus a fixed tip, and the tip is
        all the sender pays above the base fee (legacy ``gasPrice`` from the node where blocks
        have no base fee). Never derived from ``eth_gasPrice`` on a 1559 chain: its suggestion
        follows recent tips, the peers' own, and a price of "2 x the suggestion" cached by
        each peer fed back into the suggestion until it reached 469 gwei on anvil and a settle
        cost more than a peer's gas money (seen in the 8-peer benchmark)."""
        block = self._request("eth_getBlockByNumber", ["latest", False]).get("result") or {}
        base = block.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(str(self._result("eth_gasPrice", [])), 16)}
        return {"maxFeePerGas": 2 * int(str(base), 16) + PRIORITY_FEE_WEI,
                "maxPriorityFeePerGas": PRIORITY_FEE_WEI, "type": 2}

    def _transact(self, fn: str, sender: LocalAccount, *args: Any, value: int = 0) -> list[Event]:
        """Estimate (a revert raises Reverted with the dev reason), sign, send, wait for the
        receipt, decode the contract's events; raw JSON-RPC requests (chain/views.py)."""
        call = getattr(self.contract.functions, fn)(*args)
        data = call._encode_transaction_data()
        base = {"from": sender.address, "to": self.contract.address, "data": data,
                "value": hex(value)}
        estimate = self._request("eth_estimateGas", [base, "pending"])
        if "error" in estimate:
            message = str(estimate["error"].get("message", estimate["error"])) \
                if isinstance(estimate["error"], dict) else str(estimate["error"])
            if "revert" not in message.lower():
                raise Web3RPCError(f"{fn}: eth_estimateGas: {message}")
            raise Reverted(self._explain(call, {"from": sender.address, "value": value}),
                           f"{fn} from {sender.address}")
        tx = {"to": self.contract.address, "data": data, "value": value,
              "gas": gas_limit(int(str(estimate["result"]), 16)), "chainId": self.chain_id,
              **self._fees(), "nonce": self._next_nonce(sender.address)}
        try:
            receipt = self._send(sender, tx)
        except (Web3Exception, ValueError):
            self._nonces.pop(sender.address, None)  # re-read from the node next time
            raise
        if int(str(receipt["status"]), 16) != 1:
            raise Reverted("", f"{fn} from {sender.address} failed on chain")
        self.gas_log.append((fn, int(str(receipt["gasUsed"]), 16)))
        events: list[Event] = []
        mine = self.contract.address.lower()
        for log in receipt["logs"]:  # in log order
            if str(log.get("address", "")).lower() == mine:
                event = self._events.decode(log)
                if event is not None:
                    events.append(event)
        return events

    def _request(self, method: str, params: list[Any]) -> dict[str, Any]:
        return self.rpc.request(method, params)

    def _result(self, method: str, params: list[Any]) -> Any:
        """The node's ``result`` for ``method`` (None while e.g. a receipt is pending);
        Web3RPCError naming the method when it answered with an error or nothing."""
        resp = self._request(method, params)
        if "error" in resp or "result" not in resp:
            raise Web3RPCError(f"{method}: {resp.get('error', resp)!r}")
        return resp["result"]

    def _send(self, sender: LocalAccount, tx: dict[str, Any]) -> dict[str, Any]:
        """Sign and send ``tx``; its raw receipt once mined (polled every 5 ms, 120 s)."""
        raw = sender.sign_transaction(tx).raw_transaction
        sent = self._result("eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
        end = time.monotonic() + RECEIPT_TIMEOUT_S
        while True:
            got = self._result("eth_getTransactionReceipt", [sent])
            if got:
                return dict(got)
            if time.monotonic() > end:
                raise TimeExhausted(f"transaction {sent} not mined within "
                                    f"{RECEIPT_TIMEOUT_S:.0f} s")
            time.sleep(RECEIPT_POLL_S)

    def _explain(self, call: Any, base: dict[str, Any]) -> str:
        """The dev reason of a failing call, by tracing it (empty if the node cannot)."""
        tx = {"from": base["from"], "to": self.contract.address, "value": hex(base["value"]),
              "data": call._encode_transaction_data(), "gas": hex(10_000_000)}
        try:
            quiet = {"disableStorage": True, "disableMemory": True, "disableStack": True}
            trace = self.w3.provider.make_request(RPCEndpoint("debug_traceCall"),
                                                  [tx, "pending", quiet])
            logs = trace["result"]["structLogs"]
        except (KeyError, TypeError, ValueError, Web3Exception):
            return ""
        top = [x for x in logs if x.get("depth", 1) == 1]
        # asserts jump to a shared revert block: blame the last jump before the REVERT
        for x in reversed(top[:-1]):
            if x.get("op") in ("JUMPI", "JUMP"):
                return compute_dev_reason(int(x["pc"]))
        return ""

    def _call(self, fn: str, *args: Any) -> Any:
        return self._calls([(fn, args)])[0]

    def _calls(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several views in one JSON-RPC batch (chain/views.py: web3's per-call overhead is
        ~8x the node's answer)."""
        to = self.contract.address
        reqs = [("eth_call", self._views.params(to, fn, args, "pending")) for fn, args in calls]
        answers = [self.rpc.request(*reqs[0])] if len(reqs) == 1 else self.rpc.batch(reqs)
        return [self._views.answer(fn, a) for (fn, _), a in zip(calls, answers, strict=True)]

    def get_block(self) -> int:
        return int(str(self._result("eth_blockNumber", [])), 16) + 1

    def mine(self, blocks: int) -> None:
        if blocks < 0:
            raise ConfigError(f"blocks={blocks} must be >= 0")
        if blocks == 0:
            return
        resp = self._request("anvil_mine", [hex(blocks)])
        if "error" not in resp:
            return
        target = int(self.w3.eth.block_number) + blocks
        while int(self.w3.eth.block_number) < target:  # a live chain: wait for the blocks
            time.sleep(BLOCK_WAIT_S)

    def get_balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def faucet(self, address: str, amount: int) -> None:
        resp = self._request("anvil_setBalance", [address, hex(amount)])
        if "error" in resp:
            raise ChainError(f"faucet needs a dev node (anvil_setBalance failed: {resp['error']})")


def _send(w3: Web3, sender: LocalAccount, tx: dict[str, Any]) -> Any:
    """Sign ``tx`` with the sender's key, send it and wait for the receipt."""
    signed = sender.sign_transaction(tx)
    txh = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(txh, timeout=120, poll_latency=0.005)
