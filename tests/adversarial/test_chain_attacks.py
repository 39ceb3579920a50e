"""Attacks on the ledger (protocol.md §4): each one must fail, with the contract's reason."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import boa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))
from chain_world import ETH, SMALL, World, make_account, make_world  # noqa: E402

from phalanx.chain.embedded import get_deployer  # noqa: E402
from phalanx.chain.ledger import Attestation  # noqa: E402
from phalanx.chain.model import (  # noqa: E402
    Phase,
    compute_beacon_commitment,
    compute_sortition,
)

ATTACKER_SRC = """
# pragma version 0.4.3
interface Phalanx:
    def register(x25519: bytes32, endpoint: String[128]): payable
    def unbond(): nonpayable
    def withdraw(): nonpayable

target: public(Phalanx)
swallow: public(bool)
attempts: public(uint256)

@deploy
def __init__(t: address, swallow: bool):
    self.target = Phalanx(t)
    self.swallow = swallow

@external
@payable
def join():
    extcall self.target.register(empty(bytes32), "evil", value=msg.value)

@external
def leave():
    extcall self.target.unbond()

@external
def steal():
    extcall self.target.withdraw()

@external
@payable
def __default__():
    if self.attempts < 3:
        self.attempts += 1
        if self.swallow:
            ok: bool = raw_call(
                self.target.address, method_id("withdraw()"), revert_on_failure=False
            )
        else:
            extcall self.target.withdraw()
"""

OLD_SEMANTICS = pytest.mark.xfail(
    reason="asserts pre-issue-11 semantics (beacon contributors, canonical attest args, "
           "vote/settle rules); rewrite pending", strict=False)


@pytest.fixture
def world() -> World:
    get_deployer()
    return make_world()


def _attacker(world: World, swallow: bool):
    with boa.swap_env(world.led.env):
        evil = boa.loads(ATTACKER_SRC, world.led.address, swallow)
    attacker = make_account(500)
    world.led.faucet(attacker.address, 10 * ETH)
    evil.join(sender=attacker.address, value=2 * ETH)
    evil.leave(sender=attacker.address)
    world.led.advance_to(Phase.SETTLE)
    world.led.settle(world.peers[0])
    world.led.mine(SMALL.unbond_delay)
    return evil, attacker


def test_reentrant_withdraw_is_refused(world: World):
    # Prepare: a contract peer whose receive hook re-enters withdraw()
    evil, attacker = _attacker(world, swallow=False)
    vault = world.led.get_balance(world.led.address)
    # Execute / Assert: the re-entry hits the lock, so the whole withdrawal reverts
    with boa.reverts():
        evil.steal(sender=attacker.address)
    assert world.led.get_balance(world.led.address) == vault
    assert world.c.stake_of(evil.address) == 2 * ETH


def test_reentrant_withdraw_swallowing_the_lock_gets_paid_once(world: World):
    # Prepare: the hook re-enters but ignores the failure of the inner call
    evil, attacker = _attacker(world, swallow=True)
    vault = world.led.get_balance(world.led.address)
    # Execute
    evil.steal(sender=attacker.address)
    # Assert: paid exactly its stake once; everyone else's money stays
    assert evil.attempts() == 1
    assert world.led.get_balance(evil.address) == 2 * ETH
    assert world.led.get_balance(world.led.address) == vault - 2 * ETH
    assert world.c.stake_of(evil.address) == 0
    assert world.led.get_balance(world.led.address) == world.c.total_stake() + world.c.pool()


def test_late_and_double_beacon_reveals(world: World):
    c, led, p = world.c, world.led, world.peers[0]
    led.advance_to(Phase.BEACON)
    c.reveal_beacon(world.secrets[p.address], sender=p.address)
    with boa.reverts(dev="already revealed"):
        c.reveal_beacon(world.secrets[p.address], sender=p.address)
    led.advance_to(Phase.PROPOSE)
    late = world.peers[1]
    with boa.reverts(dev="not beacon phase"):
        c.reveal_beacon(world.secrets[late.address], sender=late.address)


@OLD_SEMANTICS
def test_copying_and_revealing_anothers_commitment(world: World):
    # Prepare: the attacker copies an honest peer's commitment for round 1
    c, led = world.c, world.led
    honest, attacker = world.peers[0], world.peers[1]
    world.reveal_all()
    secret = b"\x31" * 32
    led.commit_beacon(honest, secret)
    c.commit_beacon(compute_beacon_commitment(secret, honest.address, 1), sender=attacker.address)
    led.advance_to(Phase.SETTLE)
    led.settle(honest)
    led.advance_to(Phase.BEACON)
    # Execute / Assert: the commitment binds the committer, the copy cannot be opened
    c.reveal_beacon(secret, sender=honest.address)
    with boa.reverts(dev="bad reveal"):
        c.reveal_beacon(secret, sender=attacker.address)


def test_vote_without_selection_and_vote_change(world: World):
    c, led = world.c, world.led
    world.reveal_all()
    roles = world.draw()
    world.post_all(roles)
    world.attest_all(roles)
    led.advance_to(Phase.COMMIT)
    outsider = roles.proposers[0]
    with boa.reverts(dev="not a voter"):
        c.commit_vote(world.vote_commitment(outsider, True, b"\x01" * 32), sender=outsider)
    voter = roles.voters[0]
    c.commit_vote(world.vote_commitment(voter, False, b"\x02" * 32), sender=voter)
    led.advance_to(Phase.REVEAL)
    with boa.reverts(dev="no vote commitment"):
        c.reveal_vote(True, b"\x01" * 32, sender=outsider)
    c.reveal_vote(False, b"\x02" * 32, sender=voter)
    with boa.reverts(dev="already revealed"):
        c.reveal_vote(True, b"\x02" * 32, sender=voter)
    assert c.vote_of(0, voter) == 2


@OLD_SEMANTICS
def test_attest_from_outside_the_committee(world: World):
    c, led = world.c, world.led
    world.reveal_all()
    roles = world.draw()
    world.post_all(roles)
    led.advance_to(Phase.ATTEST)
    for outsider in roles.proposers + roles.voters:
        with boa.reverts(dev="not in committee"):
            c.attest(b"\x13" * 32, [], [], [], sender=outsider)
    # t = 1 dishonest member alone cannot make a result stand
    led.attest(world.by(roles.committee[0]), Attestation(b"\x13" * 32))
    assert c.winning(0) == b"\x00" * 32


def _seats(seed: int, cands: list[tuple[str, int]], group: set[str], k: int) -> int:
    chosen = compute_sortition(seed.to_bytes(32, "big"), cands, k)
    return sum(1 for a in chosen if a in group)


@pytest.mark.parametrize(("stake", "parts"), [(3, 3), (4, 4)])
def test_splitting_stake_does_not_raise_expected_seats(stake: int, parts: int):
    # Prepare: 60 honest peers of 1 unit; an attacker with `stake` units (stake*k <= S)
    k, trials = 10, 1500
    honest = [(f"h{i}", ETH) for i in range(60)]
    whole = [("attacker", stake * ETH)]
    split = [(f"sybil{j}", stake * ETH // parts) for j in range(parts)]
    rng = random.Random(5)
    seeds = [rng.getrandbits(256) for _ in range(trials)]
    # Execute
    one = [_seats(s, honest + whole, {"attacker"}, k) for s in seeds]
    many = [_seats(s, honest + split, {a for a, _ in split}, k) for s in seeds]
    # Assert: both equal k*s/S in expectation (PPS inclusion); split is not above it
    fair = k * stake / (60 + stake)
    se = (fair * (1 - fair / parts) / trials) ** 0.5 * 2 + 1e-9
    mean_one, mean_many = sum(one) / trials, sum(many) / trials
    assert abs(mean_one - fair) < 4 * se
    assert mean_many < fair + 4 * se
    assert abs(mean_many - mean_one) < 6 * se


def test_splitting_a_whale_gains_at_most_the_draw_without_replacement_bias():
    # A whale holds at most one seat; split, its seats stay within k*s/(S - s_top) per draw
    k, trials = 10, 400
    honest = [(f"h{i}", ETH) for i in range(60)]
    split = [(f"sybil{j}", ETH) for j in range(20)]
    rng = random.Random(6)
    seeds = [rng.getrandbits(256) for _ in range(trials)]
    whole = [_seats(s, honest + [("whale", 20 * ETH)], {"whale"}, k) for s in seeds]
    many = [_seats(s, honest + split, {a for a, _ in split}, k) for s in seeds]
    assert set(whole) <= {0, 1}
    assert sum(many) / trials <= k * 20 / (80 - k) + 0.15
