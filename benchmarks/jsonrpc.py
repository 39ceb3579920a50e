"""web3.py's HTTPProvider against ``chain.jsonrpc.JsonRpcClient`` on one anvil (issue 10;
docs/network.md, "A network round against the simulated one").

    PYTHONPATH=src .venv/bin/python benchmarks/jsonrpc.py [--requests 500]

Starts anvil on 127.0.0.1, then alternates the two clients (``eth_blockNumber``, and a batch
of three ``eth_blockNumber``) so that the machine's load hits both alike; prints the median
milliseconds per request of each and their ratio, and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from web3 import Web3
    from web3.types import RPCEndpoint

    from phalanx.chain.jsonrpc import JsonRpcClient
    from phalanx.node.network import start_anvil, stop_processes

    proc, url = start_anvil()
    try:
        provider = Web3(Web3.HTTPProvider(url)).provider
        ours = JsonRpcClient(url)
        one = (RPCEndpoint("eth_blockNumber"), [])
        three = [one, one, one]

        def per_request(fn: object) -> float:
            start = time.perf_counter()
            for _ in range(args.requests):
                fn()  # type: ignore[operator]
            return (time.perf_counter() - start) / args.requests * 1000

        cases = {
            "web3 request": lambda: provider.make_request(*one),
            "jsonrpc request": lambda: ours.request("eth_blockNumber", []),
            "web3 batch of 3": lambda: provider.make_batch_request(three),  # type: ignore[attr-defined]
            "jsonrpc batch of 3": lambda: ours.batch([("eth_blockNumber", [])] * 3),
        }
        for fn in cases.values():  # warm both connections
            fn()
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeats):
            for name, fn in cases.items():
                times[name].append(per_request(fn))
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, v in med.items():
            print(f"{k:20s} {v:7.3f} ms")
        ratio = {"request": med["web3 request"] / med["jsonrpc request"],
                 "batch": med["web3 batch of 3"] / med["jsonrpc batch of 3"]}
        print(f"web3 / jsonrpc: request {ratio['request']:.1f}x, batch {ratio['batch']:.1f}x")
        print(json.dumps({"ms": med, "web3_over_jsonrpc": ratio}))
    finally:
        stop_processes([proc.pid], grace=0.0)


if __name__ == "__main__":
    main()
