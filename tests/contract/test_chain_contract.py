"""Every external function of Phalanx.vy: the honest path and every revert reason."""

from __future__ import annotations

import boa
import pytest
from chain_world import ETH, SMALL, World, make_account, make_world

from phalanx.chain.embedded import EmbeddedLedger
from phalanx.chain.ledger import REASON_CODES, Attestation
from phalanx.chain.model import (
    MAX_PEERS,
    Outcome,
    Phase,
    Role,
    SlashReason,
    TaskParams,
    compute_attestation_hash,
    compute_beacon_commitment,
    compute_seed,
    compute_seed_start,
)
from phalanx.errors import ConfigError, Reject

Z = b"\x00" * 32


# -- constructor ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"min_stake": 9}, "min_stake below BPS=10000 (slashes would round to 0)"),
        ({"committee_size": 3, "threshold": 1}, "committee needs m >= 3t+1"),
        ({"committee_size": 129, "threshold": 1}, "committee_size above MAX_COMMITTEE=128"),
        ({"n_proposers": 0}, "n_proposers is zero"),
        ({"n_proposers": 129}, "n_proposers above MAX_PROPOSERS=128"),
        ({"n_voters": 0}, "n_voters is zero"),
        ({"committee_size": 128, "n_proposers": 128, "n_voters": 1}, "seats above MAX_ROLES=256"),
        ({"max_peers": 16385}, "max_peers above MAX_PEERS=16384"),
        ({"max_peers": 9}, "max_peers below seats"),
        ({"vote_quorum": 0}, "vote_quorum is zero"),
        ({"rounds": 0}, "rounds is zero"),
        ({"sigma_b": 10001}, "fraction above 1"),
        ({"sigma_p": 10001}, "fraction above 1"),
        ({"epsilon": 10001}, "fraction above 1"),
        ({"propose_blocks": 0}, "empty phase"),
        ({"reveal_blocks": 0}, "empty phase"),
    ],
)
def test_constructor_rejects_bad_params(compiled, change, reason):
    # Prepare
    p = _replace(SMALL, **change)
    # Execute / Assert
    with boa.reverts(dev=reason):
        compiled.deploy(p.as_tuple(), Z, Z)


def test_calculator_committee_is_accepted(compiled):
    # the committee `phalanx committee --corrupt 0.1 --failure 1e-6` recommends: m=55, t=18
    p = _replace(SMALL, committee_size=55, threshold=18, n_proposers=5, n_voters=4)
    compiled.deploy(p.as_tuple(), Z, Z)


def test_limits_raise_config_error_naming_value_and_cap():
    with pytest.raises(ConfigError, match="committee_size=129 exceeds the contract's "
                                          "MAX_COMMITTEE=128"):
        _replace(SMALL, committee_size=129, threshold=1).check()
    with pytest.raises(ConfigError, match="min_stake=9 wei is below the slash denominator"):
        _replace(SMALL, min_stake=9).check()


def _replace(p: TaskParams, **kw: int) -> TaskParams:
    from dataclasses import replace

    return replace(p, **kw)


def test_constructor_honest_sets_task_and_pool(compiled):
    # Execute
    led = EmbeddedLedger.deploy(SMALL, deployer=make_account(1), pool=5 * ETH,
                                genesis_seed=b"\x02" * 32, initial_model=b"\x03" * 32)
    # Assert
    c = led.contract
    assert c.pool() == 5 * ETH and c.total_funded() == 5 * ETH
    assert c.rounds_left() == SMALL.rounds and c.model_hash() == b"\x03" * 32
    assert tuple(c.params()) == SMALL.as_tuple()
    assert c.get_phase() == Phase.REGISTRATION
    assert led.get_balance(led.address) == 5 * ETH


def test_embedded_deploy_maps_revert_to_config_error(compiled):
    with pytest.raises(ConfigError, match="rounds is zero"):
        EmbeddedLedger.deploy(_replace(SMALL, rounds=0), deployer=make_account(1), pool=0,
                              genesis_seed=Z, initial_model=Z)


# -- register / fund / unbond / withdraw ---------------------------------------------------
def test_register_honest(world: World):
    c, led = world.c, world.led
    p = world.peers[3]
    assert c.stake_of(p.address) == 4 * ETH
    assert c.since_round(p.address) == 0  # registered before round 0 started
    assert c.peer_count() == 12 and c.total_stake() == sum(range(1, 13)) * ETH
    assert c.endpoint_of(p.address) == "127.0.0.1:1"
    assert c.slot_of(p.address) == 4 and c.peer_at(4) == p.address
    assert c.eligible_stake() == c.total_stake()
    # a registration never changes a draw whose seed forms or is known
    led.advance_to(Phase.BEACON)
    late = make_account(50)
    led.faucet(late.address, 2 * ETH)
    with boa.reverts(dev="beacon open"):
        c.register(Z, "x", sender=late.address, value=ETH)
    world.reveal_all()
    led.advance_to(Phase.PROPOSE)
    seats = c.compute_sortition(c.seed(), 0)
    led.register(late, ETH, b"\x01" * 32, "x")
    assert c.roles_drawn()  # the draw was fixed before the new stake entered the tree
    roles = led.get_roles()
    assert list(roles.committee + roles.proposers + roles.voters) == seats
    assert c.since_round(late.address) == 1
    assert not c.is_eligible(late.address, 0) and c.is_eligible(late.address, 1)


def test_register_reverts(world: World):
    c, p = world.c, world.peers[0]
    with boa.reverts(dev="already registered"):
        c.register(Z, "x", sender=p.address, value=ETH)
    newbie = make_account(60)
    world.led.faucet(newbie.address, 10 * ETH)
    with boa.reverts(dev="stake below minimum"):
        c.register(Z, "x", sender=newbie.address, value=ETH - 1)


def test_register_reverts_when_full(compiled):
    # max_peers is a task parameter (at least the seats, at most MAX_PEERS)
    w = make_world(_replace(SMALL, max_peers=10), n=10, stakes=[ETH] * 10)
    extra = make_account(MAX_PEERS + 5)
    w.led.faucet(extra.address, 2 * ETH)
    with boa.reverts(dev="too many peers"):
        w.c.register(Z, "x", sender=extra.address, value=ETH)


def test_register_and_commit_revert_when_task_finished(compiled):
    w = make_world(_replace(SMALL, rounds=1))
    w.led.advance_to(Phase.SETTLE)
    w.led.settle(w.peers[0])
    assert w.c.get_phase() == Phase.FINISHED
    extra = make_account(77)
    w.led.faucet(extra.address, 2 * ETH)
    with boa.reverts(dev="task finished"):
        w.c.register(Z, "x", sender=extra.address, value=ETH)
    with boa.reverts(dev="task finished"):
        w.c.commit_beacon(b"\x01" * 32, sender=w.peers[0].address)
    with boa.reverts(dev="not settle phase"):
        w.c.settle(sender=w.peers[0].address)


def test_fund(world: World):
    funder = make_account(70)
    world.led.faucet(funder.address, 3 * ETH)
    world.led.fund(funder, 2 * ETH)
    assert world.c.pool() == 102 * ETH and world.c.total_funded() == 102 * ETH
    with boa.reverts(dev="nothing sent"):
        world.c.fund(sender=funder.address, value=0)


def test_unbond_and_withdraw_honest(world: World):
    # Prepare: a peer with no beacon commitment
    led, c = world.led, world.c
    quitter = make_account(80)
    led.faucet(quitter.address, 5 * ETH)
    led.register(quitter, 3 * ETH, Z, "q")
    slot = c.slot_of(quitter.address)
    # Execute
    led.unbond(quitter)
    assert c.unbond_round(quitter.address) == 0  # unbonded before round 0: out of its draw
    assert c.weight_of(slot) == 0 and c.eligible_stake() == sum(range(1, 13)) * ETH
    world.reveal_all()
    roles = world.draw()
    assert quitter.address not in roles.committee + roles.proposers + roles.voters
    led.advance_to(Phase.SETTLE)
    led.settle(world.peers[0])
    paid = led.withdraw(quitter)
    # Assert: paid in full, deregistered, its slot freed for the next registration
    assert paid == 3 * ETH and led.get_balance(quitter.address) == 5 * ETH
    assert c.stake_of(quitter.address) == 0 and c.peer_count() == 12
    assert c.slot_of(quitter.address) == 0 and c.peer_at(slot) == "0x" + "00" * 20
    assert c.total_stake() == sum(c.stake_of(p.address) for p in world.peers)
    newbie = make_account(81)
    led.faucet(newbie.address, 2 * ETH)
    led.advance_to(Phase.PROPOSE)  # round 1 opens in its beacon phase
    led.register(newbie, ETH, Z, "n")
    assert c.slot_of(newbie.address) == slot


def test_unbond_reverts(world: World):
    c = world.c
    stranger = make_account(81)
    with boa.reverts(dev="not registered"):
        c.unbond(sender=stranger.address)
    c.unbond(sender=world.peers[0].address)
    with boa.reverts(dev="already unbonding"):
        c.unbond(sender=world.peers[0].address)


def test_withdraw_reverts(world: World):
    c, led, p = world.c, world.led, world.peers[0]
    with boa.reverts(dev="not registered"):
        c.withdraw(sender=make_account(82).address)
    with boa.reverts(dev="not unbonding"):
        c.withdraw(sender=p.address)
    led.unbond(p)
    with boa.reverts(dev="unbonding delay"):
        c.withdraw(sender=p.address)
    led.mine(SMALL.unbond_delay)
    # p committed a beacon for round 0 and may hold a role in round 0: wait for settlement
    with boa.reverts(dev="duty pending"):
        c.withdraw(sender=p.address)
    led.advance_to(Phase.SETTLE)
    led.settle(p)
    stake = c.stake_of(p.address)
    assert led.withdraw(p) == stake and c.stake_of(p.address) == 0


# -- beacon --------------------------------------------------------------------------------
def test_beacon_commit_reveal_honest(world: World):
    c, led = world.c, world.led
    seed0 = c.seed()
    assert seed0 == compute_seed_start(bytes([7]) * 32, 0)
    # round 0's contributors: the first k = 10 registered peers
    assert c.get_beacon_committers(0) == [p.address for p in world.peers[:SMALL.seats]]
    world.reveal_all()
    assert c.beacon_revealed(0, world.peers[0].address)
    assert c.seed() == compute_seed(seed0, [(world.secrets[p.address], p.address)
                                            for p in world.committers])
    # after the draw, the round's role holders commit for round 1
    roles = world.draw()
    holder = roles.committee[0]
    s = b"\x09" * 32
    led.commit_beacon(world.by(holder), s)
    assert c.beacon_commit(1, holder) == compute_beacon_commitment(
        s, holder, 1, led.chain_id, led.address)


def test_commit_beacon_reverts(world: World):
    c, led, p = world.c, world.led, world.peers[0]
    with boa.reverts(dev="not registered"):
        c.commit_beacon(b"\x01" * 32, sender=make_account(83).address)
    with boa.reverts(dev="beacon full"):  # the 11th registered peer: k = 10 already committed
        c.commit_beacon(b"\x01" * 32, sender=world.peers[SMALL.seats].address)
    led.advance_to(Phase.BEACON)
    with boa.reverts(dev="empty commitment"):
        c.commit_beacon(Z, sender=p.address)
    with boa.reverts(dev="roles not drawn"):
        c.commit_beacon(b"\x01" * 32, sender=p.address)
    world.reveal_all()
    roles = world.draw()
    seats = set(roles.committee + roles.proposers + roles.voters)
    idle = next(q for q in world.peers if q.address not in seats)
    assert not led.may_commit_beacon(idle.address)
    with boa.reverts(dev="no role this round"):
        c.commit_beacon(b"\x01" * 32, sender=idle.address)
    c.commit_beacon(b"\x01" * 32, sender=roles.committee[0])
    with boa.reverts(dev="already committed"):
        c.commit_beacon(b"\x02" * 32, sender=roles.committee[0])
    holder = world.by(roles.voters[0])
    c.unbond(sender=holder.address)
    with boa.reverts(dev="unbonding"):
        c.commit_beacon(b"\x01" * 32, sender=holder.address)


def test_reveal_beacon_reverts(world: World):
    c, led, p = world.c, world.led, world.peers[0]
    secret = world.secrets[p.address]
    with boa.reverts(dev="not beacon phase"):
        c.reveal_beacon(secret, sender=p.address)
    led.advance_to(Phase.BEACON)
    with boa.reverts(dev="bad reveal"):
        c.reveal_beacon(b"\x01" * 32, sender=p.address)
    with boa.reverts(dev="no commitment"):
        c.reveal_beacon(secret, sender=make_account(84).address)
    c.reveal_beacon(secret, sender=p.address)
    with boa.reverts(dev="already revealed"):
        c.reveal_beacon(secret, sender=p.address)
    led.advance_to(Phase.PROPOSE)
    with boa.reverts(dev="not beacon phase"):  # late reveal
        c.reveal_beacon(world.secrets[world.peers[1].address], sender=world.peers[1].address)


def test_close_beacon_draws_disjoint_roles(world: World):
    c, led = world.c, world.led
    world.reveal_all()
    with boa.reverts(dev="beacon still open"):
        c.close_beacon(sender=world.peers[0].address)
    roles = world.draw()
    seats = roles.committee + roles.proposers + roles.voters
    assert len(roles.committee) == 4 and len(roles.proposers) == 3 and len(roles.voters) == 3
    assert len(set(seats)) == len(seats)
    assert list(seats) == c.compute_sortition(c.seed(), 0)
    assert c.role_of(0, roles.committee[0]) == Role.COMMITTEE
    assert c.role_of(0, roles.voters[0]) == Role.VOTER
    with boa.reverts(dev="roles already drawn"):
        c.close_beacon(sender=world.peers[0].address)
    assert led.get_round_state().roles_drawn


# -- proposers and committee ---------------------------------------------------------------
def test_post_bundle(world: World):
    c, led = world.c, world.led
    world.reveal_all()
    with boa.reverts(dev="wrong phase"):
        c.post_bundle(b"\x01" * 32, sender=world.peers[0].address)
    roles = world.draw()
    prop = roles.proposers[0]
    with boa.reverts(dev="not a proposer"):
        c.post_bundle(b"\x01" * 32, sender=roles.voters[0])
    with boa.reverts(dev="empty root"):
        c.post_bundle(Z, sender=prop)
    c.post_bundle(b"\x01" * 32, sender=prop)
    assert c.bundle_of(0, prop) == b"\x01" * 32
    with boa.reverts(dev="already posted"):
        c.post_bundle(b"\x02" * 32, sender=prop)
    led.advance_to(Phase.ATTEST)
    with boa.reverts(dev="wrong phase"):  # late bundle
        c.post_bundle(b"\x01" * 32, sender=roles.proposers[1])


def test_attest_quorum_and_evidence(world: World):
    c, led = world.c, world.led
    world.reveal_all()
    roles = world.draw()
    world.post_all(roles)
    led.advance_to(Phase.ATTEST)
    bad = roles.proposers[1]
    good = sorted((p for p in roles.proposers if p != bad), key=lambda a: int(a, 16))
    # built in reverse order: the ledger sends canonical (sorted) lists
    att = Attestation(b"\x55" * 32, ((bad, Reject.RANGE_PROOF),), (roles.committee[3],),
                      tuple(reversed(good)))
    h = compute_attestation_hash(0, att.result, good, [bad], [REASON_CODES[Reject.RANGE_PROOF]],
                                 [roles.committee[3]])
    for i, m in enumerate(roles.committee[:3]):  # m - t = 3
        assert c.winning(0) == Z
        led.attest(world.by(m), att)
        assert c.attestation_count(h) == i + 1
    assert c.winning(0) == h
    assert c.get_evidence(h) == (att.result, good, [bad], [REASON_CODES[Reject.RANGE_PROOF]],
                                 [roles.committee[3]])


def test_attest_reverts(world: World):
    c, led = world.c, world.led
    world.reveal_all()
    roles = world.draw()
    world.post_all(roles)
    m0 = roles.committee[0]
    r = b"\x55" * 32
    with boa.reverts(dev="wrong phase"):
        c.attest(r, [], [], [], [], sender=m0)
    led.advance_to(Phase.ATTEST)
    with boa.reverts(dev="not in committee"):
        c.attest(r, [], [], [], [], sender=roles.proposers[0])
    with boa.reverts(dev="empty result"):
        c.attest(Z, [], [], [], [], sender=m0)
    p0, p1 = sorted(roles.proposers[:2], key=lambda a: int(a, 16))
    m1, m2 = sorted(roles.committee[1:3], key=lambda a: int(a, 16))
    with boa.reverts(dev="reasons length"):
        c.attest(r, [], [p0], [], [], sender=m0)
    with boa.reverts(dev="rejected without bundle"):
        c.attest(r, [], [roles.voters[0]], [1], [], sender=m0)
    with boa.reverts(dev="accepted without bundle"):
        c.attest(r, [roles.voters[0]], [], [], [], sender=m0)
    with boa.reverts(dev="rejected not sorted"):  # a duplicate is not strictly increasing
        c.attest(r, [], [p0, p1, p0], [1, 1, 1], [], sender=m0)
    with boa.reverts(dev="accepted not sorted"):
        c.attest(r, [p1, p0], [], [], [], sender=m0)
    with boa.reverts(dev="accepted and rejected"):
        c.attest(r, [p0, p1], [p1], [1], [], sender=m0)
    with boa.reverts(dev="server not in committee"):
        c.attest(r, [], [], [], [p0], sender=m0)
    with boa.reverts(dev="servers not sorted"):
        c.attest(r, [], [], [], [m2, m1], sender=m0)
    c.attest(r, [], [], [], [], sender=m0)
    with boa.reverts(dev="already attested"):
        c.attest(r, [], [], [], [], sender=m0)


# -- voters --------------------------------------------------------------------------------
def _to_vote(world: World):
    world.reveal_all()
    roles = world.draw()
    world.post_all(roles)
    world.attest_all(roles)
    return roles


def test_vote_commit_reveal_honest(world: World):
    roles = _to_vote(world)
    world.vote_all(roles, [True, False, True])
    assert [world.c.vote_of(0, v) for v in roles.voters] == [1, 2, 1]


def test_commit_vote_reverts(world: World):
    c, led = world.c, world.led
    roles = _to_vote(world)
    v0 = roles.voters[0]
    h = world.vote_commitment(v0, True, b"\x01" * 32)
    with boa.reverts(dev="wrong phase"):
        c.commit_vote(h, sender=v0)
    led.advance_to(Phase.COMMIT)
    with boa.reverts(dev="not a voter"):
        c.commit_vote(h, sender=roles.committee[0])
    with boa.reverts(dev="empty commitment"):
        c.commit_vote(Z, sender=v0)
    c.commit_vote(h, sender=v0)
    with boa.reverts(dev="already committed"):
        c.commit_vote(h, sender=v0)


def test_commit_vote_needs_standing_result(world: World):
    world.reveal_all()
    roles = world.draw()
    world.led.advance_to(Phase.COMMIT)  # nobody attested
    with boa.reverts(dev="no standing result"):
        world.c.commit_vote(b"\x01" * 32, sender=roles.voters[0])


def test_reveal_vote_reverts(world: World):
    c, led = world.c, world.led
    roles = _to_vote(world)
    v0, v1 = roles.voters[0], roles.voters[1]
    salt = b"\x01" * 32
    led.advance_to(Phase.COMMIT)
    c.commit_vote(world.vote_commitment(v0, True, salt), sender=v0)
    with boa.reverts(dev="wrong phase"):
        c.reveal_vote(True, salt, sender=v0)
    led.advance_to(Phase.REVEAL)
    with boa.reverts(dev="no vote commitment"):
        c.reveal_vote(True, salt, sender=v1)
    with boa.reverts(dev="bad reveal"):  # another vote than committed
        c.reveal_vote(False, salt, sender=v0)
    c.reveal_vote(True, salt, sender=v0)
    with boa.reverts(dev="already revealed"):  # no change after reveal
        c.reveal_vote(False, salt, sender=v0)


# -- settlement ----------------------------------------------------------------------------
def test_settle_accepted_rewards_and_slashes(compiled):
    # Prepare: equal stakes, one rejected client, one identified server, one undelivered input
    world = make_world(stakes=[ETH] * 12)
    c, led = world.c, world.led
    world.reveal_all()
    roles = world.draw()
    world.post_all(roles)
    led.advance_to(Phase.ATTEST)
    bad, gone, cheat = roles.proposers[0], roles.proposers[2], roles.committee[3]
    att = Attestation(b"\x66" * 32, ((bad, Reject.PROJECTION),), (cheat,), (roles.proposers[1],))
    for m in roles.committee[:3]:
        led.attest(world.by(m), att)
    world.vote_all(roles, [True, True, False])
    led.advance_to(Phase.SETTLE)
    before = {a: c.stake_of(a) for a in roles.committee + roles.proposers + roles.voters}
    pool0 = c.pool()
    # Execute
    s = led.settle(world.peers[0])
    # Assert
    assert s.stands and s.accepted and s.outcome is Outcome.ACCEPTED
    assert c.model_hash() == b"\x66" * 32
    slashed = {a: (reason, amt) for a, reason, amt in s.slashes}
    assert slashed[bad] == (SlashReason.CLIENT, before[bad] * SMALL.sigma_c // 10000)
    assert slashed[cheat] == (SlashReason.SERVER, before[cheat] * SMALL.sigma_s // 10000)
    assert slashed[gone] == (SlashReason.PROPOSER, before[gone] * SMALL.sigma_p // 10000)
    # the losing (reject) voter is neither paid nor slashed: losing is not a provable fault
    v2 = roles.voters[2]
    assert set(slashed) == {bad, cheat, gone} and v2 not in s.rewards
    assert c.stake_of(v2) == before[v2]
    rewarded = {roles.proposers[1]} | set(roles.committee[:3]) | set(roles.voters[:2])
    assert set(s.rewards) == rewarded
    budget = pool0 // SMALL.rounds
    weight = sum(before[a] for a in rewarded)
    for a in rewarded:
        assert s.rewards[a] == budget * before[a] // weight
        assert c.stake_of(a) == before[a] + s.rewards[a]
    assert c.pool() == pool0 - s.paid + sum(amt for _, amt in slashed.values())
    assert c.round() == 1 and c.rounds_left() == SMALL.rounds - 1
    assert c.get_roles() == ([], [], [])


def test_settle_rejected_pays_rejecters_and_drops_the_evidence(compiled):
    world = make_world(stakes=[ETH] * 12)
    c, led = world.c, world.led
    world.reveal_all()
    roles = world.draw()
    world.post_all(roles)
    bad = roles.proposers[0]
    world.attest_all(roles, Attestation(b"\x77" * 32, ((bad, Reject.PROJECTION),),
                                        (roles.committee[0],), tuple(roles.proposers[1:])))
    world.vote_all(roles, [True, False, False])
    led.advance_to(Phase.SETTLE)
    s = led.settle(world.peers[0])
    assert s.stands and not s.accepted and s.outcome is Outcome.REJECTED
    assert c.model_hash() == b"\x01" * 32
    assert set(s.rewards) == set(roles.voters[1:])
    assert s.accept_stake == ETH and s.reject_stake == 2 * ETH
    # nobody pays: the rejected result's evidence slashes nobody and the losing voter
    # (not provably wrong) only misses its reward
    assert s.slashes == []


def test_settle_tie_is_undecided_and_pays_nobody(compiled):
    w = make_world(stakes=[ETH] * 12)
    roles = _to_vote(w)
    w.led.advance_to(Phase.COMMIT)
    salts = [w.rand32() for _ in roles.voters]
    for v, s, a in zip(roles.voters, salts, [True, False, True], strict=True):
        w.led.commit_vote(w.by(v), a, s)
    w.led.advance_to(Phase.REVEAL)
    for v, s, a in zip(roles.voters[:2], salts, [True, False], strict=False):
        w.led.reveal_vote(w.by(v), a, s)  # the third withholds its accept
    w.led.advance_to(Phase.SETTLE)
    s = w.led.settle(w.peers[0])
    # 2 of 3 revealed: quorum (50%) holds, but a tie decides nothing: nobody wins a tie
    assert s.accept_stake == s.reject_stake == ETH
    assert s.outcome is Outcome.UNDECIDED and not s.accepted and s.paid == 0 and s.rewards == {}
    assert w.c.model_hash() == b"\x01" * 32
    assert [(a, r) for a, r, _ in s.slashes] == [(roles.voters[2], SlashReason.WITHHELD)]


def test_settle_without_result_pays_nothing_and_slashes_the_silent(world: World):
    c, led = world.c, world.led
    led.advance_to(Phase.BEACON)
    silent = world.committers[5]
    for p in world.committers:
        if p is not silent:
            led.reveal_beacon(p, world.secrets[p.address])
    with boa.reverts(dev="not settle phase"):
        c.settle(sender=world.peers[0].address)
    led.advance_to(Phase.SETTLE)
    led.close_beacon(world.peers[0])
    roles = led.get_roles()
    pool0, stake0 = c.pool(), c.stake_of(silent.address)
    s = led.settle(world.peers[0])
    assert not s.stands and s.outcome is Outcome.VOID and s.paid == 0 and s.rewards == {}
    assert s.slashes[0] == (silent.address, SlashReason.BEACON, stake0 * SMALL.sigma_b // 10000)
    # nobody attested or posted: every member sigma_m, every proposer sigma_p
    got = [(a, r) for a, r, _ in s.slashes[1:]]
    assert got == ([(a, SlashReason.MEMBER) for a in roles.committee]
                   + [(a, SlashReason.PROPOSER) for a in roles.proposers])
    assert c.pool() == pool0 + sum(amt for _, _, amt in s.slashes)


# -- part-2 responses ----------------------------------------------------------------------
def test_post_response_window_and_missed_deadline(compiled):
    p = _replace(SMALL, attest_blocks=3, response_blocks=2)
    w = make_world(p, stakes=[ETH] * 12)
    c, led = w.c, w.led
    w.reveal_all()
    roles = w.draw()
    late, silent = roles.proposers[1], roles.proposers[2]
    for a in roles.proposers[:2]:
        led.post_bundle(w.by(a), w.rand32())
    with boa.reverts(dev="wrong phase"):
        c.post_response(b"\x01" * 32, sender=roles.proposers[0])
    led.advance_to(Phase.ATTEST)
    with boa.reverts(dev="not a proposer"):
        c.post_response(b"\x01" * 32, sender=roles.voters[0])
    with boa.reverts(dev="no bundle"):
        c.post_response(b"\x01" * 32, sender=silent)
    with boa.reverts(dev="empty root"):
        c.post_response(Z, sender=roles.proposers[0])
    led.post_response(w.by(roles.proposers[0]), b"\x02" * 32)
    assert led.get_response(0, roles.proposers[0]) == b"\x02" * 32
    with boa.reverts(dev="already responded"):
        c.post_response(b"\x03" * 32, sender=roles.proposers[0])
    m0 = roles.committee[0]
    with boa.reverts(dev="response window open"):  # coins come after the roots are fixed
        c.attest(b"\x55" * 32, [], [], [], [], sender=m0)
    led.mine(2)
    with boa.reverts(dev="response window closed"):
        c.post_response(b"\x04" * 32, sender=late)
    with boa.reverts(dev="accepted without response"):
        c.attest(b"\x55" * 32, [late], [], [], [], sender=m0)
    for m in roles.committee:
        led.attest(w.by(m), Attestation(b"\x55" * 32, accepted=(roles.proposers[0],)))
    w.vote_all(roles, [False, False, False])  # rejected: the missed deadlines still pay
    led.advance_to(Phase.SETTLE)
    s = led.settle(w.peers[0])
    assert s.outcome is Outcome.REJECTED
    got = {a for a, r, _ in s.slashes if r is SlashReason.PROPOSER}
    assert got == {late, silent}  # bundle without response, and no bundle at all
