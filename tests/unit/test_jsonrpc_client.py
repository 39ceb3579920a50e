"""chain.jsonrpc.JsonRpcClient against a tiny JSON-RPC server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from web3.exceptions import Web3RPCError

from phalanx.chain.jsonrpc import JsonRpcClient
from phalanx.errors import ConfigError


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a node answers

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if isinstance(doc, list):  # answer a batch in reverse order, as a node may
            out: object = [{"jsonrpc": "2.0", "id": d["id"], "result": d["method"]}
                           for d in reversed(doc)]
        elif doc["method"] == "broken":
            body = b"not json"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        else:
            out = {"jsonrpc": "2.0", "id": doc["id"], "result": doc["params"]}
        body = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_requests_and_batches_in_call_order_over_one_connection(server: str) -> None:
    rpc = JsonRpcClient(server)
    assert rpc.request("echo", [1, "a"])["result"] == [1, "a"]
    assert [r["result"] for r in rpc.batch([("a", []), ("b", []), ("c", [])])] == ["a", "b", "c"]
    assert rpc.request("echo", [2])["result"] == [2]  # the kept-alive connection again
    rpc.close()


def test_a_non_json_answer_names_the_method(server: str) -> None:
    with pytest.raises(Web3RPCError, match="broken"):
        JsonRpcClient(server).request("broken", [])


def test_a_node_that_is_down_is_a_connection_error_naming_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ConnectionError, match=f"rpc_url={url}"):
        JsonRpcClient(url, timeout=2).request("eth_blockNumber", [])


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8545", "127.0.0.1:8545", "http://"])
def test_a_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="rpc_url"):
        JsonRpcClient(url)
