"""The ledger suite's integration part on a real node: anvil (npm ``@foundry-rs/anvil``) on
127.0.0.1, through the ``rpc`` backend. Skipped only when npm itself is missing; with npm but
no binary it fails, because CI installs it (``make anvil``)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3.exceptions import ContractLogicError

from phalanx.chain.driver import RoundDriver
from phalanx.chain.ledger import make_ledger
from phalanx.chain.model import Phase, Reverted, TaskParams
from phalanx.chain.rpc import RpcLedger

pytestmark = pytest.mark.anvil

ETH = 10**18
ANVIL = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "anvil"
PARAMS = TaskParams(
    min_stake=ETH, committee_size=4, threshold=1, n_proposers=3, n_voters=3, rounds=5,
    sigma_p=500, registration_blocks=64, beacon_blocks=40, propose_blocks=16, attest_blocks=16,
    commit_blocks=16, reveal_blocks=16, unbond_delay=2,
)
PEERS = [Account.from_key((i + 7000).to_bytes(32, "big")) for i in range(12)]
DEPLOYER = Account.from_key((6999).to_bytes(32, "big"))
GENESIS = b"\x21" * 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def anvil_url() -> Iterator[str]:
    """A fresh anvil on a free local port (killed with its process group at the end)."""
    if not ANVIL.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm not found: cannot install @foundry-rs/anvil (run `make anvil`)")
        pytest.fail(f"npm is installed but {ANVIL} is missing: run `make anvil`")
    port = _free_port()
    proc = subprocess.Popen([str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"],
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                RpcLedger.connect(url)
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"anvil did not answer JSON-RPC at {url} within 20 s")
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _drive(backend: str, url: str | None) -> tuple[list, dict[str, int], object]:
    if url is not None:
        RpcLedger.connect(url).provider.make_request(
            "anvil_setBalance", [DEPLOYER.address, hex(1000 * ETH)])
    led = make_ledger(backend, params=PARAMS, deployer=DEPLOYER, pool=40 * ETH,
                      genesis_seed=GENESIS, rpc_url=url)
    drv = RoundDriver(led, random.Random(3))
    drv.register_all(PEERS, [ETH * (1 + i % 4) for i in range(len(PEERS))])
    votes = [lambda v: True, lambda v: int(v, 16) % 2 == 0]
    out = [drv.play_round(vote=votes[i]) for i in range(2)]
    return out, dict(drv.get_stakes()), led


def test_rounds_on_anvil_match_the_model(anvil_url: str):
    # Execute: the same peers, seed and behaviour on anvil and on the pure model
    on_chain, stakes_chain, led = _drive("rpc", anvil_url)
    mirror, stakes_model, _ = _drive("model", None)
    # Assert: bit-identical settlements and stakes; money conserved on the real node
    assert [r.settlement for r in on_chain] == [r.settlement for r in mirror]
    assert [r.roles for r in on_chain] == [r.roles for r in mirror]
    assert stakes_chain == stakes_model
    state = led.get_round_state()
    assert state.round == 2 and state.phase == Phase.BEACON
    assert led.get_balance(led.address) == state.total_stake + state.pool
    assert any(fn == "settle" and gas > 21_000 for fn, gas in led.gas_log)


def test_reverts_on_anvil_carry_the_dev_reason(anvil_url: str):
    RpcLedger.connect(anvil_url).provider.make_request(
        "anvil_setBalance", [DEPLOYER.address, hex(1000 * ETH)])
    led = make_ledger("rpc", params=PARAMS, deployer=DEPLOYER, pool=ETH, genesis_seed=GENESIS,
                      rpc_url=anvil_url)
    peer = PEERS[0]
    led.faucet(peer.address, 10 * ETH)
    with pytest.raises(Reverted) as e:
        led.register(peer, ETH // 2, b"\x00" * 32, "x")
    assert e.value.reason == "stake below minimum"
    led.register(peer, ETH, b"\x00" * 32, "x")
    with pytest.raises(Reverted) as e:
        led.withdraw(peer)
    assert e.value.reason == "not unbonding"
    with pytest.raises(Reverted) as e:
        led.settle(peer)
    assert e.value.reason == "not settle phase"
    # attach to the deployed task from its address alone
    again = make_ledger("rpc", params=PARAMS, deployer=DEPLOYER, pool=0, rpc_url=anvil_url,
                        address=led.address)
    assert again.params == PARAMS and again.get_stake(peer.address) == ETH


def test_cli_deploys_and_reads_status(anvil_url: str):
    from typer.testing import CliRunner

    from phalanx.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["chain", "deploy", "--rpc", anvil_url, "--rounds", "7",
                              "--committee", "4", "--proposers", "3", "--voters", "3"])
    assert out.exit_code == 0, out.output
    address = out.output.split("deployed Phalanx task at ")[1].split()[0]
    got = runner.invoke(app, ["chain", "status", "--rpc", anvil_url, "--address", address])
    assert got.exit_code == 0, got.output
    assert "rounds=7" in got.output and "phase=REGISTRATION" in got.output


def test_batched_views_equal_web3_calls_for_every_view_function(anvil_url: str):
    # Arrange: a task with two rounds played, so that the views hold non-trivial values
    _, _, led = _drive("rpc", anvil_url)
    assert isinstance(led, RpcLedger)
    state = led.get_round_state()
    sample = {"address": PEERS[1].address, "uint256": max(0, state.round - 1),
              "bytes32": state.seed, "uint8": 1, "bool": True}
    calls = [(f.name, tuple(sample[t] for t in f.inputs))
             for f in led._views.functions.values() if all(t in sample for t in f.inputs)]
    assert len(calls) == len(led._views.functions)  # every view is exercised

    def web3_call(fn: str, args: tuple) -> object:
        try:
            return getattr(led.contract.functions, fn)(*args).call(block_identifier="pending")
        except ContractLogicError:
            return "reverted"

    def codec_call(fn: str, args: tuple) -> object:
        try:
            return led._call(fn, *args)
        except ContractLogicError:
            return "reverted"

    # Act: each view one at a time through web3 and the codec, then all in one batch
    expected = [web3_call(fn, args) for fn, args in calls]
    single = [codec_call(fn, args) for fn, args in calls]
    ok = [c for c, e in zip(calls, expected, strict=True) if e != "reverted"]
    batched = led._calls(ok)
    # Assert: the same values and types as web3 returns, in both forms
    assert single == expected
    assert [type(x) for x in single] == [type(x) for x in expected]
    assert batched == [e for e in expected if e != "reverted"]
    with pytest.raises(TypeError, match="takes 1 arguments"):
        led._call("stake_of")


def test_raw_receipt_events_equal_web3_process_log(anvil_url: str):
    # Arrange: two rounds played through the raw transaction path
    _, _, led = _drive("rpc", anvil_url)
    assert isinstance(led, RpcLedger)
    logs = led.w3.eth.get_logs({"address": led.contract.address, "fromBlock": 0})
    assert len(logs) > 20
    # Act: each log decoded by web3 and by the codec (from its raw JSON-RPC form)
    raw = led.w3.provider.make_request(
        "eth_getLogs", [{"address": led.contract.address, "fromBlock": "0x0"}])["result"]
    ours = [led._events.decode(x) for x in raw]
    names = {e["name"] for e in led.contract.abi if e["type"] == "event"}
    theirs = []
    for log in logs:
        for name in names:
            try:
                theirs.append((name, dict(led.contract.events[name]().process_log(log)["args"])))
                break
            except Exception:
                continue
    # Assert: the same events with the same argument values and types
    assert ours == theirs
    assert [{k: type(v) for k, v in a.items()} for _, a in ours] == \
        [{k: type(v) for k, v in a.items()} for _, a in theirs]


def test_fees_follow_the_base_fee_and_do_not_feed_back(anvil_url: str):
    # Arrange: a task, and twelve peers that each attach (a fresh process) and transact once,
    # one after the other: a price taken from the node's suggestion (which follows recent
    # tips) and marked up by every newcomer escalated without bound
    _, _, led = _drive("rpc", anvil_url)
    paid = []
    for i in range(12):
        me = Account.from_key((i + 8100).to_bytes(32, "big"))
        led.faucet(me.address, 5 * ETH)
        peer = RpcLedger.attach(anvil_url, led.address)
        peer.fund(me, 1)
        block = peer.w3.eth.get_block("latest", full_transactions=True)
        receipt = peer.w3.eth.get_transaction_receipt(block["transactions"][-1]["hash"])
        paid.append((int(receipt["effectiveGasPrice"]), int(block["baseFeePerGas"])))
    # Assert: each paid the base fee plus the fixed tip, and the last no more than the first
    from phalanx.chain.rpc import PRIORITY_FEE_WEI

    assert all(price == base + PRIORITY_FEE_WEI for price, base in paid), paid
    assert paid[-1][0] <= paid[0][0], paid
