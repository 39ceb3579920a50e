"""The chain node restarting under a peer (issue 10, faults): the peer's chain calls are
retried with backoff and go on against the restarted node with nothing lost; a node that stays
down ends in one clear error. A real anvil, stopped (it dumps its state) and started again on
the same port from that state."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from eth_account import Account

from phalanx.chain.ledger import make_ledger
from phalanx.chain.model import TaskParams
from phalanx.errors import ChainError
from phalanx.node.network import REPO_ANVIL, start_anvil, stop_processes
from phalanx.node.runner import Node

ETH = 10**18
PARAMS = TaskParams(
    min_stake=ETH, committee_size=4, threshold=1, n_proposers=2, n_voters=2, rounds=3,
    registration_blocks=64, beacon_blocks=40, propose_blocks=16, attest_blocks=16,
    commit_blocks=16, reveal_blocks=16, unbond_delay=2)

pytestmark = pytest.mark.skipif(not REPO_ANVIL.exists(), reason="anvil missing: run `make anvil`")


def test_a_restarted_chain_node_is_retried_and_a_dead_one_is_one_error(tmp_path: Path) -> None:
    state = tmp_path / "chain"
    proc, url = start_anvil(extra=["--dump-state", str(state)])
    port = int(url.rsplit(":", 1)[1])
    restarted: list[subprocess.Popen[bytes]] = []
    try:
        # Arrange: a task with one registered peer, then the node stops (dumping its state)
        deployer, peer = Account.create(), Account.create()
        from phalanx.chain.rpc import RpcLedger

        RpcLedger.connect(url).provider.make_request(
            "anvil_setBalance", [deployer.address, hex(100 * ETH)])  # type: ignore[arg-type]
        led = make_ledger("rpc", params=PARAMS, deployer=deployer, pool=ETH,
                          genesis_seed=b"\x07" * 32, rpc_url=url)
        led.faucet(peer.address, 3 * ETH)
        led.register(peer, 2 * ETH, b"\x01" * 32, "127.0.0.1:1")
        before = led.get_round_state()
        stop_processes([proc.pid], grace=10.0)
        assert (state / "state.json").is_file() or state.is_file()

        def restart() -> None:
            time.sleep(1.0)
            restarted.append(start_anvil(port, ["--load-state", str(state / "state.json")
                                                if state.is_dir() else str(state)])[0])

        fake = SimpleNamespace(cfg=SimpleNamespace(poll=0.1, rpc_retries=10, rpc_url=url))
        thread = threading.Thread(target=restart)
        thread.start()
        # Act: the peer reads the chain while the node is down and coming back
        t0 = time.monotonic()
        after = Node.rpc(fake, led.get_round_state)  # type: ignore[arg-type]
        waited = time.monotonic() - t0
        thread.join()
        # Assert: it waited for the restart, then read the same chain (nothing lost)
        assert waited >= 0.9
        assert (after.round, after.phase, after.peers, after.total_stake) == \
            (before.round, before.phase, before.peers, before.total_stake) == \
            (after.round, after.phase, 1, 2 * ETH)
        assert led.get_stake(peer.address) == 2 * ETH
        # and a transaction goes through on the restarted node
        led.faucet(deployer.address, 10 * ETH)
        led.fund(deployer, ETH)
        assert led.get_round_state().pool == before.pool + ETH
        # Act: the node goes away for good
        stop_processes([p.pid for p in restarted], grace=0.0)
        restarted.clear()
        fast = SimpleNamespace(cfg=SimpleNamespace(poll=0.01, rpc_retries=3, rpc_url=url))
        # Assert: one clear error naming the node and the attempts
        with pytest.raises(ChainError, match=rf"rpc_url={url} failed 3 times: ConnectionError"):
            Node.rpc(fast, led.get_round_state)  # type: ignore[arg-type]
    finally:
        stop_processes([proc.pid, *[p.pid for p in restarted]], grace=0.0)
