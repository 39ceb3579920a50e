"""Unit tests of the pure integer mirror (chain/model.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phalanx.chain.model import (
    BPS,
    LedgerModel,
    Phase,
    Reverted,
    TaskParams,
    compute_budget,
    compute_rewards,
    compute_slash,
    compute_sortition,
    is_accept_vote,
)

P = TaskParams(min_stake=10_000, committee_size=4, threshold=1, n_proposers=2, n_voters=2,
               rounds=3, registration_blocks=2, beacon_blocks=1, propose_blocks=2,
               attest_blocks=3, commit_blocks=1, reveal_blocks=1)


def test_budget_and_slash_truncate_like_the_evm():
    assert compute_budget(10, 3) == 3
    assert compute_budget(2, 3) == 0
    assert compute_slash(999, 1000) == 99  # 99.9 truncated
    assert compute_slash(5, BPS) == 5


def test_rewards_split_by_stake_with_truncation():
    # Prepare / Execute
    shares = compute_rewards(100, [1, 1, 1])
    # Assert: 33 each, 1 wei stays in the pool
    assert shares == [33, 33, 33]
    assert compute_rewards(100, []) == []
    assert compute_rewards(100, [0, 0]) == [0, 0]


@given(budget=st.integers(0, 10**30), stakes=st.lists(st.integers(0, 10**24), max_size=64))
def test_rewards_never_exceed_budget(budget: int, stakes: list[int]):
    shares = compute_rewards(budget, stakes)
    assert sum(shares) <= budget
    assert sum(shares) >= budget - len(stakes) if any(stakes) else sum(shares) == 0


def test_voter_rule_uses_epsilon():
    assert is_accept_vote(0.95, 1.0, 500)
    assert not is_accept_vote(0.94, 1.0, 500)


def test_params_validation_names_the_problem():
    with pytest.raises(Reverted, match="committee needs m >= 3t\\+1"):
        TaskParams(min_stake=10_000, committee_size=3, threshold=1, n_proposers=1, n_voters=1,
                   rounds=1).validate()


def test_phases_follow_the_block_schedule():
    m = LedgerModel.create(P, pool=0, genesis_seed=b"\x00" * 32, initial_model=b"\x00" * 32,
                           block=10)
    seen = []
    for b in range(10, 21):
        m.block = b
        seen.append(m.get_phase())
    assert seen == [Phase.REGISTRATION] * 2 + [Phase.BEACON] + [Phase.PROPOSE] * 2 + (
        [Phase.ATTEST] * 3) + [Phase.COMMIT, Phase.REVEAL, Phase.SETTLE]
    assert m.get_phase_end(Phase.ATTEST) == 18


def test_sortition_is_deterministic_disjoint_and_needs_k_candidates():
    cands = [(f"p{i}", 10 + i) for i in range(12)]
    a = compute_sortition(b"\x01" * 32, cands, 8)
    assert a == compute_sortition(b"\x01" * 32, cands, 8)
    assert len(set(a)) == 8
    assert a != compute_sortition(b"\x02" * 32, cands, 8)
    assert compute_sortition(b"\x01" * 32, cands[:7], 8) == []


def test_sortition_gives_a_whale_at_most_one_seat():
    cands = [("whale", 1000)] + [(f"p{i}", 1) for i in range(20)]
    for s in range(20):
        assert compute_sortition(bytes([s]) * 32, cands, 5).count("whale") == 1
