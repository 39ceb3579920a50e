"""The contract's sortition view and the Python mirror agree seat for seat (protocol.md §4)."""

from __future__ import annotations

from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx.chain.embedded import EmbeddedLedger
from phalanx.chain.model import TaskParams, compute_sortition

ETH = 10**18
PARAMS = TaskParams(min_stake=ETH // 10, committee_size=5, threshold=1, n_proposers=4,
                    n_voters=3, rounds=3, registration_blocks=5)
PEERS = [Account.from_key((i + 3000).to_bytes(32, "big")) for i in range(40)]

stakes_st = st.lists(
    st.one_of(st.integers(ETH // 10, 3 * ETH), st.integers(3 * ETH, 200 * ETH),
              st.integers(0, ETH // 10 - 1)),  # below the minimum: never eligible
    min_size=8, max_size=40,
)


@settings(max_examples=30, deadline=None)
@given(stakes=stakes_st, seed=st.binary(min_size=32, max_size=32))
def test_contract_sortition_equals_model(stakes: list[int], seed: bytes) -> None:
    # Prepare: register the peers whose stake reaches the minimum (the others cannot register)
    led = EmbeddedLedger.deploy(PARAMS, deployer=PEERS[0], pool=0, genesis_seed=seed,
                                initial_model=b"\x00" * 32)
    cands = []
    for acct, s in zip(PEERS, stakes, strict=False):
        if s < PARAMS.min_stake:
            continue
        led.faucet(acct.address, s + ETH)
        led.register(acct, s, b"\x00" * 32, "e")
        cands.append((acct.address, s))
    # Execute
    got = led.compute_sortition(seed, 0)
    want = compute_sortition(seed, cands, PARAMS.seats)
    # Assert
    assert got == want
    if len(cands) >= PARAMS.seats:
        assert len(got) == PARAMS.seats == len(set(got))
    else:
        assert got == []
