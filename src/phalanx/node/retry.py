"""Chain calls retried with exponential backoff, then one clear error (issue 10: "the chain node
restarting or an RPC error → retried with backoff, then a clear error")."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from web3.exceptions import ContractLogicError, Web3Exception

from phalanx.errors import ChainError

log = logging.getLogger("phalanx.node")

#: what a node that is down, restarting or overloaded raises (a revert is not one of them)
RPC_ERRORS = (OSError, requests.RequestException, Web3Exception, TimeoutError)
#: the longest wait between two tries
MAX_WAIT_S = 5.0

T = TypeVar("T")


def with_retries(fn: Callable[[], T], *, url: str, first_wait: float, tries: int) -> T:
    """``fn()``, retried on RPC errors after ``first_wait`` s, doubling up to ``MAX_WAIT_S``;
    after ``tries`` failures a ChainError naming the node and the last error. Reverts
    (ContractLogicError) are answers, not failures: raised at once."""
    wait = first_wait
    for attempt in range(1, tries + 1):
        try:
            return fn()
        except ContractLogicError:
            raise
        except RPC_ERRORS as e:
            if attempt == tries:
                raise ChainError(f"rpc_url={url} failed {attempt} times: "
                                 f"{type(e).__name__}: {e}") from e
            log.warning("chain call failed (%s: %s), retry %d in %.2f s",
                        type(e).__name__, str(e)[:200], attempt, wait)
            time.sleep(wait)
            wait = min(wait * 2, MAX_WAIT_S)
    raise AssertionError("unreachable")
