"""View calls encoded from the contract's ABI, sent as raw (batched) ``eth_call``s.

web3.py's contract machinery costs ~9 ms of Python per view call (ABI lookup, middleware,
formatters); the node answers in ~1 ms. A peer reads a dozen views at each phase change and
eight peers share two cores, so the round's chain reads were dominated by that overhead
(docs/network.md, "Where a network round's time goes"). This codec encodes the call data with
``eth_abi`` from the ABI once per function, sends any number of calls in one JSON-RPC batch,
and decodes the results into the same Python values web3 returns (checksummed addresses,
``bytes`` for fixed bytes, tuples for structs, lists for arrays and for several outputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError


def abi_type(item: dict[str, Any]) -> str:
    """The canonical type of one ABI input/output (structs as ``(t1,t2,...)``)."""
    t = str(item["type"])
    if t.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in item["components"])
        return f"({inner}){t[len('tuple'):]}"
    return t


def normalize(item: dict[str, Any], value: Any) -> Any:
    """``eth_abi``'s value as web3 returns it: checksummed addresses, tuples for structs."""
    t = str(item["type"])
    if t.endswith("]"):
        inner = {**item, "type": t[: t.rindex("[")]}
        return [normalize(inner, v) for v in value]
    if t == "tuple":
        return tuple(normalize(c, v) for c, v in zip(item["components"], value, strict=True))
    if t == "address":
        return Web3.to_checksum_address(value)
    return value


@dataclass(frozen=True)
class ViewFunction:
    """One view function: its selector and types."""

    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[dict[str, Any], ...]

    def call_data(self, args: Sequence[Any]) -> str:
        if len(args) != len(self.inputs):
            raise TypeError(f"{self.name} takes {len(self.inputs)} arguments, got {len(args)}")
        return "0x" + (self.selector + encode(list(self.inputs), list(args))).hex()

    def result(self, raw: str) -> Any:
        data = bytes.fromhex(raw[2:] if raw.startswith("0x") else raw)
        values = decode([abi_type(o) for o in self.outputs], data)
        out = [normalize(o, v) for o, v in zip(self.outputs, values, strict=True)]
        return out[0] if len(out) == 1 else out


class ViewCodec:
    """Every view function of an ABI, by name."""

    def __init__(self, abi: Sequence[dict[str, Any]]) -> None:
        self.functions: dict[str, ViewFunction] = {}
        for e in abi:
            if e.get("type") != "function" or e.get("stateMutability") not in ("view", "pure"):
                continue
            inputs = tuple(abi_type(i) for i in e["inputs"])
            sig = f"{e['name']}({','.join(inputs)})"
            self.functions[str(e["name"])] = ViewFunction(
                str(e["name"]), function_signature_to_4byte_selector(sig), inputs,
                tuple(e["outputs"]))

    def params(self, to: str, fn: str, args: Sequence[Any], block: str) -> list[Any]:
        """The ``eth_call`` params of ``fn(*args)`` at ``block`` (KeyError: not a view)."""
        return [{"to": to, "data": self.functions[fn].call_data(args)}, block]

    def answer(self, fn: str, response: dict[str, Any]) -> Any:
        """The decoded result of one JSON-RPC response; a revert raises ContractLogicError
        as web3 does, any other node error Web3RPCError."""
        err = response.get("error")
        if err is not None:
            message = str(err.get("message", err)) if isinstance(err, dict) else str(err)
            if "revert" in message.lower():
                raise ContractLogicError(f"{fn}: {message}")
            raise Web3RPCError(f"{fn}: {message}")
        return self.functions[fn].result(str(response["result"]))


@dataclass(frozen=True)
class EventType:
    """One event: its name and which inputs sit in topics (all static types here)."""

    name: str
    inputs: tuple[dict[str, Any], ...]

    def decode(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        """The event's arguments by name, as web3's ``process_log`` gives them."""
        indexed = [i for i in self.inputs if i["indexed"]]
        plain = [i for i in self.inputs if not i["indexed"]]
        if len(topics) != len(indexed) + 1:
            raise ValueError(f"{self.name}: {len(topics)} topics for {len(indexed)} indexed")
        out: dict[str, Any] = {}
        for item, topic in zip(indexed, topics[1:], strict=True):
            (value,) = decode([abi_type(item)], _hex(topic))
            out[str(item["name"])] = normalize(item, value)
        values = decode([abi_type(i) for i in plain], _hex(data))
        for item, value in zip(plain, values, strict=True):
            out[str(item["name"])] = normalize(item, value)
        return {str(i["name"]): out[str(i["name"])] for i in self.inputs}


class EventCodec:
    """Every event of an ABI, by topic 0."""

    def __init__(self, abi: Sequence[dict[str, Any]]) -> None:
        self.by_topic: dict[bytes, EventType] = {}
        for e in abi:
            if e.get("type") != "event":
                continue
            sig = f"{e['name']}({','.join(abi_type(i) for i in e['inputs'])})"
            self.by_topic[bytes(Web3.keccak(text=sig))] = EventType(str(e["name"]),
                                                                    tuple(e["inputs"]))

    def decode(self, log: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """(name, arguments) of a raw JSON-RPC log entry; None for a topic not in the ABI."""
        topics = [str(t) for t in log.get("topics", [])]
        event = self.by_topic.get(_hex(topics[0])) if topics else None
        if event is None:
            return None
        return event.name, event.decode(topics, str(log.get("data", "0x")))


def _hex(s: str) -> bytes:
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)
