"""A small JSON-RPC 2.0 client over one persistent HTTP connection (issue 10: the peers' hot
chain calls).

web3.py's ``HTTPProvider`` costs ~2.2 ms per request on this VM against ~0.37 ms for
a request over a kept-alive ``http.client`` connection (anvil's answer included;
``benchmarks/jsonrpc.py``). Every peer polls the chain and waits for its receipts, so with ten
processes on two cores that overhead was most of a chain step (15 ms per poll). The ledger
keeps web3 for deployment and ABI work and sends its views, transactions and receipt polls
here. Errors: a connection that fails is re-opened once (a node closes idle keep-alive
connections); a node that does not answer raises :class:`ConnectionError` (an ``OSError``, so
``node.retry`` retries it); an answer that is not JSON-RPC raises ``Web3RPCError`` naming the
method.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from web3.exceptions import Web3RPCError

from phalanx.errors import ConfigError


class JsonRpcClient:
    """``request(method, params)`` and ``batch([(method, params), ...])`` against ``url``."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"rpc_url={url!r} must be an http:// or https:// URL")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        if parts.username is not None:
            cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def request(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        """The node's whole response object (``result`` or ``error``)."""
        rid = next(self._ids)
        doc = self._post({"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)},
                         method)
        if not isinstance(doc, dict):
            raise Web3RPCError(f"{method}: the node answered {doc!r}")
        return doc

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
        """The responses of one JSON-RPC batch, in the order of ``calls`` (a node may answer
        a batch in any order; responses are matched by id)."""
        ids = [next(self._ids) for _ in calls]
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                for i, (m, p) in zip(ids, calls, strict=True)]
        name = f"batch of {len(calls)} ({calls[0][0] if calls else 'nothing'})"
        doc = self._post(body, name)
        if not isinstance(doc, list):
            raise Web3RPCError(f"{name}: the node answered {doc!r}")
        by_id = {r.get("id"): r for r in doc if isinstance(r, dict)}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise Web3RPCError(f"{name}: the node answered {len(by_id)} of {len(ids)} calls")
        return [by_id[i] for i in ids]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- transport --------------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def _post(self, doc: Any, what: str) -> Any:
        body = json.dumps(doc).encode()
        with self._lock:
            for attempt in (1, 2):
                fresh = self._conn is None
                if self._conn is None:
                    self._conn = self._connect()
                try:
                    self._conn.request("POST", self._path, body, self._headers)
                    resp = self._conn.getresponse()
                    raw = resp.read()
                    status = resp.status
                    break
                except (OSError, http.client.HTTPException) as e:
                    self._conn.close()
                    self._conn = None
                    # a kept-alive connection the node closed: one fresh try
                    if fresh or attempt == 2:
                        raise ConnectionError(f"rpc_url={self.url}: {what}: "
                                              f"{type(e).__name__}: {e}") from e
        if status != 200:
            raise ConnectionError(f"rpc_url={self.url}: {what}: HTTP {status} "
                                  f"{raw[:200]!r}")
        try:
            return json.loads(raw)
        except ValueError as e:
            raise Web3RPCError(f"{what}: the node answered non-JSON {raw[:200]!r}") from e
