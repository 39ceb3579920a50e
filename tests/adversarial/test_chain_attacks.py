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
    SlashReason,
    compute_sortition,
)
from phalanx.errors import Reject  # noqa: E402

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


def test_copying_and_revealing_anothers_commitment(world: World):
    # Prepare: after the draw, a role holder copies another role holder's round-1 commitment
    c, led = world.c, world.led
    world.reveal_all()
    roles = world.draw()
    honest, attacker = world.by(roles.committee[0]), world.by(roles.committee[1])
    secret = b"\x31" * 32
    led.commit_beacon(honest, secret)
    c.commit_beacon(c.beacon_commit(1, honest.address), sender=attacker.address)
    led.advance_to(Phase.SETTLE)
    led.settle(honest)
    led.advance_to(Phase.BEACON)
    # Execute / Assert: the commitment binds the committer, the copy cannot be opened
    c.reveal_beacon(secret, sender=honest.address)
    with boa.reverts(dev="bad reveal"):
        c.reveal_beacon(secret, sender=attacker.address)
    led.advance_to(Phase.SETTLE)
    stake = c.stake_of(attacker.address)
    s = led.settle(honest)
    assert (attacker.address, SlashReason.BEACON, stake * SMALL.sigma_b // 10000) in s.slashes


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


def test_attest_from_outside_the_committee(world: World):
    c, led = world.c, world.led
    world.reveal_all()
    roles = world.draw()
    world.post_all(roles)
    led.advance_to(Phase.ATTEST)
    for outsider in roles.proposers + roles.voters:
        with boa.reverts(dev="not in committee"):
            c.attest(b"\x13" * 32, [], [], [], [], sender=outsider)
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


# -- issue 11: each hole, on the contract (embedded) and on its mirror (model) ---------------
BACKENDS = ["embedded", "model"]
EQUAL = [ETH] * 12


def _task(backend: str, params=SMALL, n: int = 12, stakes=None, rng: int = 5):
    from phalanx.chain.driver import RoundDriver
    from phalanx.chain.ledger import make_ledger

    get_deployer()
    deployer = make_account(900)
    led = make_ledger(backend, params=params, deployer=deployer, pool=100 * ETH,
                      genesis_seed=b"\x21" * 32, initial_model=b"\x01" * 32)
    drv = RoundDriver(led, random.Random(rng))
    drv.register_all([make_account(600 + i) for i in range(n)], stakes or [ETH] * n)
    return led, drv, deployer


def _reasons(s) -> dict[str, set]:
    out: dict[str, set] = {}
    for a, r, _ in s.slashes:
        out.setdefault(a, set()).add(r)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_reordering_the_reveals_gives_the_same_seed(backend: str):
    from phalanx.chain.model import compute_seed

    seeds = []
    for order in (1, -1):
        led, drv, _ = _task(backend)
        start = led.get_round_state().seed
        led.advance_to(Phase.BEACON)
        pending = list(drv.secrets.items())[::order]
        for a, secret in pending:
            led.reveal_beacon(drv.accounts[a], secret)
        seeds.append(led.get_round_state().seed)
        assert seeds[-1] == compute_seed(start, [(x, a) for a, x in pending])
    assert seeds[0] == seeds[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_withholding_the_last_reveal_costs_sigma_b(backend: str):
    led, drv, _ = _task(backend)
    last = list(drv.secrets)[-1]
    stake = led.get_stake(last)
    res = drv.play_round(reveals=lambda a: a != last)
    assert (last, SlashReason.BEACON, stake * SMALL.sigma_b // 10000) in res.settlement.slashes


@pytest.mark.parametrize("backend", BACKENDS)
def test_withdraw_does_not_change_the_draw(backend: str):
    # Prepare: twin tasks, the same peer unbonds in both before round 0; in one it withdraws
    # after round 1's seed is final (the old swap-and-pop reordered every later seat)
    roles = []
    for leave in (False, True):
        led, drv, _ = _task(backend)
        quitter = drv.accounts[list(drv.accounts)[-1]]
        led.unbond(quitter)
        drv.play_round()  # its unbonding delay passes during the round
        led.advance_to(Phase.BEACON)
        for a, secret in list(drv.secrets.items()):
            led.reveal_beacon(drv.accounts[a], secret)
        drv.secrets.clear()
        led.advance_to(Phase.PROPOSE)
        if leave:
            assert led.withdraw(quitter) == ETH
        led.close_beacon(quitter)
        roles.append(led.get_roles())
    assert roles[0] == roles[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_unrevealed_votes_are_slashed_and_no_quorum_pays_nothing(backend: str):
    # The free option: every voter commits accept and nobody reveals (the old rule accepted)
    led, drv, _ = _task(backend, stakes=EQUAL)
    model0 = led.get_round_state().model_hash
    res = drv.play_round(vote=lambda v: True, reveals_vote=lambda v, a: False)
    s = res.settlement
    assert s.stands and s.outcome.name == "UNDECIDED" and not s.accepted
    assert s.paid == 0 and s.rewards == {}
    assert led.get_round_state().model_hash == model0
    withheld = [a for a, r, _ in s.slashes if r is SlashReason.WITHHELD]
    assert sorted(withheld) == sorted(res.roles.voters)
    assert all(amt == ETH * SMALL.sigma_v // 10000 for a, r, amt in s.slashes
               if r is SlashReason.WITHHELD)


@pytest.mark.parametrize("backend", BACKENDS)
def test_committed_but_undelivered_proposer_is_slashed_not_paid(backend: str):
    led, drv, _ = _task(backend, stakes=EQUAL)

    def attest(member: str, roles):  # every member: input of proposers[0] never arrived
        return Attestation(b"\x44" * 32, accepted=tuple(roles.proposers[1:]))

    res = drv.play_round(attest=attest)
    s, gone = res.settlement, res.roles.proposers[0]
    assert s.accepted and gone not in s.rewards
    assert (gone, SlashReason.PROPOSER, ETH * SMALL.sigma_p // 10000) in s.slashes
    assert set(res.roles.proposers[1:]) <= set(s.rewards)


@pytest.mark.parametrize("backend", BACKENDS)
def test_silent_and_false_attesting_members_are_slashed(backend: str):
    from dataclasses import replace

    p = replace(SMALL, committee_size=7, threshold=2)  # m - t = 5
    led, drv, _ = _task(backend, params=p, n=16, stakes=[ETH] * 16)

    def attest(member: str, roles):
        i = roles.committee.index(member)
        if i == 5:
            return Attestation(b"\xee" * 32, accepted=tuple(roles.proposers))  # another result
        if i == 6:
            return None  # silent
        return Attestation(b"\x45" * 32, accepted=tuple(roles.proposers))

    res = drv.play_round(attest=attest)
    s, com = res.settlement, res.roles.committee
    assert s.accepted
    assert _reasons(s)[com[5]] == {SlashReason.MEMBER} == _reasons(s)[com[6]]
    assert set(com[:5]) <= set(s.rewards) and not {com[5], com[6]} & set(s.rewards)


@pytest.mark.parametrize("backend", BACKENDS)
def test_captured_committee_cannot_slash_honest_peers_when_voters_reject(backend: str):
    led, drv, _ = _task(backend, stakes=EQUAL)

    def attest(member: str, roles):  # all members lie: honest inputs rejected, a server named
        return Attestation(b"\x66" * 32, tuple((a, Reject.PROJECTION) for a in roles.proposers),
                           (roles.committee[0],))

    res = drv.play_round(attest=attest, vote=lambda v: False)
    s = res.settlement
    assert s.stands and s.outcome.name == "REJECTED"
    assert not {r for _, r, _ in s.slashes} & {SlashReason.CLIENT, SlashReason.SERVER}
    assert not set(res.roles.proposers) & {a for a, _, _ in s.slashes}
    assert set(s.rewards) == set(res.roles.voters)


@pytest.mark.parametrize("backend", BACKENDS)
def test_captured_committee_splitting_the_result_cannot_slash_without_a_vote(backend: str):
    # m - t = 3 captured members agree on evidence naming an honest client and the honest
    # member, but each attests another result, so nothing stands and no vote checks it (the
    # old residual rule slashed sigma_c and sigma_s here): the evidence slashes nobody
    led, drv, _ = _task(backend, stakes=EQUAL)

    def attest(member: str, roles):
        i = roles.committee.index(member)
        if i == 3:
            return Attestation(b"\x5f" * 32, accepted=tuple(roles.proposers))  # the honest one
        return Attestation(bytes([0x50 + i]) * 32, ((roles.proposers[0], Reject.RANGE_PROOF),),
                           (roles.committee[3],), tuple(roles.proposers[1:]))

    res = drv.play_round(attest=attest)
    s = res.settlement
    assert not s.stands and s.outcome.name == "VOID" and s.paid == 0
    assert s.slashes == []  # everyone attested and posted: nothing provable, nothing moves


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("accept_wins", [True, False])
def test_losing_voter_at_min_stake_keeps_its_stake_and_eligibility(backend: str,
                                                                    accept_wins: bool):
    # A diligent voter with exactly min_stake on the losing side: the old rule slashed it
    # sigma_v below min_stake and it was never drawn again; now it only misses the reward
    led, drv, _ = _task(backend, stakes=EQUAL)
    loser: list[str] = []

    def vote(v: str) -> bool:
        voters = drv.ledger.get_roles().voters
        if v == voters[0]:
            loser.append(v)
            return not accept_wins
        return accept_wins

    res = drv.play_round(vote=vote)
    s, v0 = res.settlement, loser[0]
    assert s.outcome.name == ("ACCEPTED" if accept_wins else "REJECTED")
    assert v0 not in s.rewards and v0 not in _reasons(s)
    assert led.get_stake(v0) == ETH == SMALL.min_stake
    assert set(res.roles.voters[1:]) <= set(s.rewards)


@pytest.mark.parametrize("backend", BACKENDS)
def test_withholding_a_losing_ballot_costs_more_than_revealing_it(backend: str):
    # No free option: twin tasks, the same losing voter opens its ballot in one and withholds
    # it in the other; opening keeps its stake, withholding pays sigma_v, so revealing a
    # committed ballot always dominates (a coalition cannot open only the ballots that win)
    stakes, outcomes = [], []
    for reveal in (True, False):
        led, drv, _ = _task(backend, stakes=EQUAL)
        last: list[str] = []

        def vote(v: str, drv=drv, last=last) -> bool:
            last[:] = [drv.ledger.get_roles().voters[-1]]
            return v != last[0]

        res = drv.play_round(vote=vote,
                             reveals_vote=lambda v, a, last=last, reveal=reveal: reveal
                             or v != last[0])
        outcomes.append(res.settlement.outcome.name)
        stakes.append(led.get_stake(last[0]))
        assert last[0] not in res.settlement.rewards
    assert outcomes == ["ACCEPTED", "ACCEPTED"]
    assert stakes == [ETH, ETH - ETH * SMALL.sigma_v // 10000]


@pytest.mark.parametrize("backend", BACKENDS)
def test_audit_round_slashes_lazy_accepters_and_pays_rejecters(backend: str):
    led, drv, deployer = _task(backend, stakes=EQUAL)
    res = drv.play_round(vote=lambda v: v != drv.ledger.get_roles().voters[0],
                         audit=(deployer, True))
    s, voters = res.settlement, res.roles.voters
    assert s.outcome.name == "AUDITED" and not s.accepted
    assert set(s.rewards) == {voters[0]}
    assert all(_reasons(s)[v] == {SlashReason.AUDIT} for v in voters[1:])
    assert not set(res.roles.proposers) & {a for a, _, _ in s.slashes}  # nothing else moves


@pytest.mark.parametrize("backend", BACKENDS)
def test_audit_round_still_slashes_an_unlisted_proposer_and_pays_nobody_else(backend: str):
    # A strategic proposer must not hide its zero-trust input in audit rounds: the committee
    # cannot tell an audit round, so its standing evidence's fault slashes apply (sigma_p on
    # the proposer it does not list), while only the voters who rejected the auditor's
    # candidate are paid and the model stays (economics.md, "Strategic adversary")
    for audit, outcome in ((True, "AUDITED"), (False, "REJECTED")):
        led, drv, deployer = _task(backend, stakes=EQUAL)
        model0 = led.get_round_state().model_hash

        def attest(member: str, roles) -> Attestation:
            listed = sorted(roles.proposers, key=lambda a: int(a, 16))[1:]
            return Attestation((roles.round + 1).to_bytes(32, "big"), accepted=tuple(listed))

        res = drv.play_round(vote=lambda v: False, attest=attest, audit=(deployer, audit))
        s, roles = res.settlement, res.roles
        hidden = sorted(roles.proposers, key=lambda a: int(a, 16))[0]
        assert s.outcome.name == outcome and not s.accepted
        assert set(s.rewards) == set(roles.voters)  # reject-voters only
        if audit:  # the evidence stands: the unlisted proposer pays sigma_p, nobody else
            assert _reasons(s) == {hidden: {SlashReason.PROPOSER}}
            assert led.get_stake(hidden) == ETH - ETH * SMALL.sigma_p // 10000
        else:  # a result the voters refused slashes nobody
            assert _reasons(s) == {}
        assert led.get_round_state().model_hash == model0


@pytest.mark.parametrize("backend", BACKENDS)
def test_weight_cap_bounds_a_grown_stake_in_the_draw(backend: str):
    # Compounded rewards buy no extra draw weight above weight_cap, so a peer that is never
    # paid keeps its odds of being drawn (and, if it misbehaves, slashed); splitting stake
    # into identities gains nothing either: weight per staked wei never exceeds 1
    from dataclasses import replace

    params = replace(SMALL, weight_cap=2 * ETH)
    led, drv, _ = _task(backend, params=params, stakes=[5 * ETH] + [ETH] * 11)
    big = next(iter(drv.accounts))
    assert led.get_stake(big) == 5 * ETH
    weights = [led._call("weight_of", i) for i in range(1, 13)]
    assert weights == [2 * ETH] + [ETH] * 11
    drv.play_round(vote=lambda v: True)
    assert led.get_stake(big) >= 5 * ETH


@pytest.mark.parametrize("backend", BACKENDS)
def test_weight_cap_below_min_stake_is_refused(backend: str):
    from dataclasses import replace

    from phalanx.errors import ConfigError

    with pytest.raises(ConfigError, match="weight_cap=1 wei is below min_stake"):
        _task(backend, params=replace(SMALL, weight_cap=1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_pool_reclaim_and_fund_after_the_end(backend: str):
    from dataclasses import replace

    from phalanx.chain.model import Reverted

    led, drv, deployer = _task(backend, params=replace(SMALL, rounds=1), stakes=EQUAL)
    with pytest.raises(Reverted, match="task not finished"):
        led.reclaim(deployer)
    s = drv.play_round(vote=lambda v: False).settlement  # rejected: only voters paid
    left = led.get_round_state().pool
    assert left > 0 and s.paid < s.budget
    led.faucet(deployer.address, 2 * ETH)
    with pytest.raises(Reverted, match="task finished"):
        led.fund(deployer, ETH)
    with pytest.raises(Reverted, match="nothing to reclaim"):
        led.reclaim(drv.accounts[list(drv.accounts)[0]])
    assert led.reclaim(deployer) == left  # the only funder gets the whole leftover
    assert led.get_round_state().pool == 0
    with pytest.raises(Reverted, match="nothing to reclaim"):
        led.reclaim(deployer)


@pytest.mark.parametrize("backend", BACKENDS)
def test_256_identities_no_longer_lock_everyone_out(backend: str):
    from dataclasses import replace

    led, drv, _ = _task(backend, params=replace(SMALL, max_peers=300), n=257, stakes=[ETH] * 257)
    assert led.get_round_state().round == 0 and len(drv.accounts) == 257  # the old cap was 256
    extra = [make_account(1900 + i) for i in range(44)]
    for a in extra[:43]:
        led.faucet(a.address, 2 * ETH)
        led.register(a, ETH, b"\x00" * 32, "x")
    from phalanx.chain.model import Reverted

    led.faucet(extra[43].address, 2 * ETH)
    with pytest.raises(Reverted, match="too many peers"):  # the task's own cap, declared
        led.register(extra[43], ETH, b"\x00" * 32, "x")


@pytest.mark.parametrize("backend", BACKENDS)
def test_dust_min_stake_is_refused(backend: str):
    from dataclasses import replace

    from phalanx.chain.ledger import make_ledger
    from phalanx.errors import ConfigError

    get_deployer()
    with pytest.raises(ConfigError, match="min_stake=9 wei is below the slash denominator"):
        make_ledger(backend, params=replace(SMALL, min_stake=9), deployer=make_account(900),
                    pool=ETH)


def test_commitments_are_bound_to_the_chain_and_the_contract(world: World):
    # a commitment made for another task (another contract address) cannot be opened here
    from phalanx.chain.model import compute_beacon_commitment, compute_vote_commitment

    c, led = world.c, world.led
    world.reveal_all()
    roles = world.draw()
    holder = roles.committee[0]
    secret = b"\x71" * 32
    elsewhere = "0x" + "cd" * 20
    c.commit_beacon(compute_beacon_commitment(secret, holder, 1, led.chain_id, elsewhere),
                    sender=holder)
    world.post_all(roles)
    world.attest_all(roles)
    led.advance_to(Phase.COMMIT)
    v = roles.voters[0]
    salt = b"\x72" * 32
    c.commit_vote(compute_vote_commitment(0, True, salt, v, led.chain_id + 1, led.address),
                  sender=v)
    led.advance_to(Phase.REVEAL)
    with boa.reverts(dev="bad reveal"):  # committed for another chain id
        c.reveal_vote(True, salt, sender=v)
    led.advance_to(Phase.SETTLE)
    led.settle(world.peers[0])
    led.advance_to(Phase.BEACON)
    with boa.reverts(dev="bad reveal"):  # committed for another contract
        c.reveal_beacon(secret, sender=holder)


@pytest.mark.parametrize("backend", BACKENDS)
def test_evidence_in_any_order_is_the_same_attestation(backend: str):
    led, drv, _ = _task(backend, stakes=EQUAL)

    def attest(member: str, roles):  # each member lists the same evidence in its own order
        i = roles.committee.index(member)
        rej = [(roles.proposers[0], Reject.PROJECTION), (roles.proposers[1], Reject.NOT_BINARY)]
        srv = [roles.committee[3], roles.committee[2]]
        if i % 2:
            rej, srv = rej[::-1], srv[::-1]
        return Attestation(b"\x46" * 32, tuple(rej), tuple(srv), (roles.proposers[2],))

    res = drv.play_round(attest=attest)
    assert res.settlement.stands and res.settlement.accepted


@pytest.mark.parametrize("backend", BACKENDS)
def test_bundle_without_part2_response_is_a_missed_deadline(backend: str):
    from dataclasses import replace

    led, drv, _ = _task(backend, params=replace(SMALL, attest_blocks=3, response_blocks=1),
                        stakes=EQUAL)
    first = {}

    def responds(p: str) -> bool:  # the first proposer commits part 1 and never answers
        first.setdefault("p", p)
        return p != first["p"]

    res = drv.play_round(responds=responds)
    s, gone = res.settlement, first["p"]
    assert s.accepted and gone not in s.rewards
    assert (gone, SlashReason.PROPOSER, ETH * SMALL.sigma_p // 10000) in s.slashes
    assert all(led.get_response(0, p) != b"\x00" * 32 for p in res.roles.proposers if p != gone)
