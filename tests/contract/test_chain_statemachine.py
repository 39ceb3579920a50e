"""Differential state machine: random operation sequences on the contract and on the pure model.

Both must accept or revert (with the same dev reason) every operation, produce the same
settlements, and keep the invariants of protocol.md §4: contract balance = stakes + pool; a
slashed stake never returns to its owner; at most one vote per voter per round; total rewards
never exceed what was funded plus what was slashed; the sortition tree's total is the stake of
the bonded peers at or above min_stake; the funders reclaim at most the leftover pool
(issue 11: bound commitments, beacon contributors, accepted lists, audit rounds, reclaim).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chain_world import ETH, SMALL, make_account
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from phalanx.chain.embedded import EmbeddedLedger
from phalanx.chain.model import (
    LedgerModel,
    Reverted,
    compute_audit_commitment,
    compute_beacon_commitment,
    compute_vote_commitment,
)

DEPLOYER = make_account(999)  # funder and auditor: ACTORS[AUDITOR]
ACTORS = [make_account(i) for i in range(14)] + [DEPLOYER]
ADDRS = [a.address for a in ACTORS]
AUDITOR = len(ACTORS) - 1
GENESIS, MODEL0 = b"\x42" * 32, b"\x01" * 32
PARAMS = replace(SMALL, response_blocks=1,  # attest_blocks=2: one block of part-2 responses
                 weight_cap=2 * ETH)  # stakes above 2 ETH (and grown ones) draw capped
pick = st.integers(min_value=0, max_value=len(ACTORS) - 1)


class LedgerMachine(RuleBasedStateMachine):
    """Contract and model side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.led = EmbeddedLedger.deploy(PARAMS, deployer=DEPLOYER, pool=50 * ETH,
                                         genesis_seed=GENESIS, initial_model=MODEL0)
        self.model = LedgerModel.create(PARAMS, pool=50 * ETH, genesis_seed=GENESIS,
                                        initial_model=MODEL0, block=self.led.get_block(),
                                        deployer=DEPLOYER.address, chain_id=self.led.chain_id,
                                        address=self.led.address)
        self.bind = (self.led.chain_id, self.led.address)
        self.audit_salt: dict[int, tuple[bool, bytes]] = {}
        self.paid_back = 0
        for a in ADDRS:  # the deployer (auditor) may act as a peer too
            self.led.faucet(a, 1000 * ETH)
        self.secrets: dict[tuple[int, str], bytes] = {}
        self.salts: dict[tuple[int, str], tuple[bool, bytes]] = {}
        self.net_in: dict[str, int] = {a: 0 for a in ADDRS}  # deposits + rewards − slashes − out
        self.reveals: dict[tuple[int, str], int] = {}
        for who in range(12):  # a live task: 12 staked peers with beacon commitments
            self.register(who, 2 + who % 4)
            if self.model.can_commit_beacon(ADDRS[who]):  # the first k contribute to round 0
                self.commit_beacon(who, False)

    # -- lockstep ---------------------------------------------------------------------------
    def both(self, fn: str, who: int, *args: Any, value: int = 0,
             model_args: tuple[Any, ...] | None = None) -> Any:
        """Run one operation on both; they must agree on success or on the revert reason."""
        sender = ADDRS[who]
        try:
            self.led._transact(fn, ACTORS[who], *args, value=value)
            err_c = None
        except Reverted as e:
            err_c = e.reason
        margs = model_args if model_args is not None else args
        try:
            if fn in ("register", "fund"):
                out = getattr(self.model, fn)(sender, value)
            else:
                out = getattr(self.model, fn)(sender, *margs)
            err_m = None
        except Reverted as e:
            err_m, out = e.reason, None
        assert err_c == err_m, f"{fn}: contract {err_c!r} vs model {err_m!r}"
        return out if err_m is None else Reverted

    def role_holder(self, group: list[str], i: int) -> int:
        """An index into ACTORS: a holder of ``group`` when there is one."""
        return ADDRS.index(group[i % len(group)]) if group else i

    # -- rules ------------------------------------------------------------------------------
    @rule(who=pick, units=st.integers(min_value=0, max_value=6))
    def register(self, who: int, units: int) -> None:
        value = units * ETH // 2
        if self.both("register", who, b"\x00" * 32, "ep", value=value) is not Reverted:
            self.net_in[ADDRS[who]] += value

    @rule(who=pick, units=st.integers(min_value=0, max_value=3))
    def fund(self, who: int, units: int) -> None:
        self.both("fund", who, value=units * ETH)

    @rule(blocks=st.integers(min_value=1, max_value=3))
    def mine(self, blocks: int) -> None:
        self.led.mine(blocks)
        self.model.block += blocks

    @rule()
    def next_phase(self) -> None:
        phase = self.model.get_phase()
        while self.model.get_phase() == phase and phase < 6:
            self.mine(1)

    @rule(variant=st.integers(min_value=0, max_value=2), mask=st.integers(0, 2**5 - 1))
    def everyone_acts(self, variant: int, mask: int) -> None:
        """Every role holder does its honest step for the current phase."""
        m, phase = self.model, int(self.model.get_phase())
        if 2 <= phase <= 6 and not m.roles_drawn:
            self.close_beacon(0)
        if phase == 1:
            for who, a in enumerate(ADDRS):
                if (m.round, a) in self.secrets and not mask >> who & 1 & variant:
                    self.reveal_beacon(who, False)
        elif phase == 2:
            for a in m.committee + m.proposers + m.voters:  # next round's beacon
                self.commit_beacon(ADDRS.index(a), False)
            for i in range(len(m.proposers or [0])):
                if not mask >> i & 1 & variant:
                    self.post_bundle(i, False)
        elif phase == 3 and m.block < m._response_end():
            for i in range(len(m.proposers or [0])):
                if not mask >> (i + 1) & 1 & variant:  # variant 1: some responses missed
                    self.post_response(i, False)
        elif phase == 3:
            for i in range(len(m.committee or [0])):
                self.attest(i, False, variant)
        elif phase == 4:
            for i in range(len(m.voters or [0])):
                self.commit_vote(i, False, bool(mask >> i & 1))
        elif phase == 5:
            for i in range(len(m.voters or [0])):
                if not mask >> (i + 2) & 1 & variant:  # variant 1: some ballots withheld
                    self.reveal_vote(i, False)
        elif phase == 6:
            self.settle(0)

    # the honest bulk step and phase changes drawn more often than single actions
    everyone_acts_2 = rule(variant=st.just(0), mask=st.integers(0, 31))(
        lambda self, variant, mask: self.everyone_acts(variant, mask))
    everyone_acts_3 = rule(variant=st.integers(0, 2), mask=st.integers(0, 31))(
        lambda self, variant, mask: self.everyone_acts(variant, mask))
    next_phase_2 = rule()(lambda self: self.next_phase())

    @rule(who=pick, garbage=st.booleans())
    def commit_beacon(self, who: int, garbage: bool) -> None:
        m, a = self.model, ADDRS[who]
        target = m.round + (1 if m.block >= m.round_start else 0)
        secret = (who + 7 * target).to_bytes(32, "big")
        h = b"\x00" * 32 if garbage else compute_beacon_commitment(secret, a, target, *self.bind)
        if self.both("commit_beacon", who, h) is not Reverted:
            self.secrets[(target, a)] = secret

    @rule(who=pick, wrong=st.booleans())
    def reveal_beacon(self, who: int, wrong: bool) -> None:
        a = ADDRS[who]
        secret = self.secrets.get((self.model.round, a), b"\x05" * 32)
        if wrong:  # another peer's secret (revealing someone else's commitment)
            secret = self.secrets.get((self.model.round, ADDRS[(who + 1) % 14]), b"\x06" * 32)
        self.both("reveal_beacon", who, secret)

    @rule(who=pick)
    def close_beacon(self, who: int) -> None:
        self.both("close_beacon", who)

    @rule(i=pick, outsider=st.booleans())
    def post_bundle(self, i: int, outsider: bool) -> None:
        who = i if outsider else self.role_holder(self.model.proposers, i)
        self.both("post_bundle", who, (i + 1).to_bytes(32, "big"))

    @rule(i=pick, outsider=st.booleans())
    def post_response(self, i: int, outsider: bool) -> None:
        who = i if outsider else self.role_holder(self.model.proposers, i)
        self.both("post_response", who, (i + 50).to_bytes(32, "big"))

    @rule(i=pick, outsider=st.booleans(), variant=st.integers(min_value=0, max_value=3))
    def attest(self, i: int, outsider: bool, variant: int) -> None:
        """variant 0 accepts every posted input, 1 rejects the first, 2 names a server, 3
        accepts nothing (undelivered); lists in canonical order."""
        m = self.model
        who = i if outsider else self.role_holder(m.committee, i)
        posted = sorted((p for p in m.proposers if (m.round, p) in m.bundle_of
                         and (variant != 0 or (m.round, p) in m.response_of)),
                        key=lambda a: int(a, 16))
        rejected = posted[:1] if variant == 1 else []
        accepted = [] if variant == 3 else [p for p in posted if p not in rejected]
        servers = m.committee[-1:] if variant == 2 else []
        self.both("attest", who, bytes([0x99 + variant]) * 32, accepted, rejected,
                  [3] * len(rejected), servers)

    @rule(i=pick, outsider=st.booleans(), accept=st.booleans())
    def commit_vote(self, i: int, outsider: bool, accept: bool) -> None:
        m = self.model
        who = i if outsider else self.role_holder(m.voters, i)
        salt = (i + 100).to_bytes(32, "big")
        h = compute_vote_commitment(m.round, accept, salt, ADDRS[who], *self.bind)
        if self.both("commit_vote", who, h) is not Reverted:
            self.salts[(m.round, ADDRS[who])] = (accept, salt)

    @rule(i=pick, flip=st.booleans())
    def reveal_vote(self, i: int, flip: bool) -> None:
        m = self.model
        who = self.role_holder(m.voters, i)
        accept, salt = self.salts.get((m.round, ADDRS[who]), (True, b"\x01" * 32))
        if self.both("reveal_vote", who, accept != flip, salt) is not Reverted:
            key = (m.round, ADDRS[who])
            self.reveals[key] = self.reveals.get(key, 0) + 1

    @rule(who=pick)
    def settle(self, who: int) -> None:
        try:
            got = self.led.settle(ACTORS[who])
        except Reverted as e:
            got = e
        try:
            want = self.model.settle(ADDRS[who])
        except Reverted as e:
            assert isinstance(got, Reverted) and got.reason == e.reason
            return
        assert got == want
        event(f"settled: stands={want.stands} accepted={want.accepted} paid>0={want.paid > 0}")
        for a, amt in want.rewards.items():
            self.net_in[a] += amt
        for a, _, amt in want.slashes:
            self.net_in[a] -= amt

    @rule(bad=st.booleans())
    def audit_commit(self, bad: bool) -> None:
        r = self.model.round
        salt = (r + 500).to_bytes(32, "big")
        h = compute_audit_commitment(r, bad, salt, *self.bind)
        if self.both("audit_commit", AUDITOR, h) is not Reverted:
            self.audit_salt[r] = (bad, salt)

    @rule(lie=st.booleans())
    def audit_reveal(self, lie: bool) -> None:
        bad, salt = self.audit_salt.get(self.model.round, (True, b"\x03" * 32))
        self.both("audit_reveal", AUDITOR, bad != lie, salt)

    @rule(who=st.sampled_from([AUDITOR, 0, 1]))
    def reclaim(self, who: int) -> None:
        a = ADDRS[who]
        bal = self.led.get_balance(a)
        paid = self.both("reclaim", who)
        if paid is not Reverted:
            assert self.led.get_balance(a) == bal + paid
            self.paid_back += paid

    @rule(who=pick)
    def unbond(self, who: int) -> None:
        self.both("unbond", who)

    @rule(who=pick)
    def withdraw(self, who: int) -> None:
        a = ADDRS[who]
        bal = self.led.get_balance(a)
        paid = self.both("withdraw", who)
        if paid is not Reverted:
            assert self.led.get_balance(a) == bal + paid
            assert paid == self.net_in[a]  # exactly deposits + rewards − slashes, never more
            self.net_in[a] -= paid

    # -- invariants -------------------------------------------------------------------------
    @invariant()
    def same_state(self) -> None:
        c, m = self.led.contract, self.model
        assert (c.pool(), c.round(), c.rounds_left(), c.total_stake()) == (
            m.pool, m.round, m.rounds_left, m.total_stake)
        assert (c.seed(), c.model_hash(), int(c.get_phase())) == (
            m.seed, m.model_hash, int(m.get_phase()))
        for a in ADDRS:
            assert c.stake_of(a) == m.stake_of.get(a, 0) == self.net_in[a]

    @invariant()
    def balance_is_stakes_plus_pool(self) -> None:
        m = self.model
        assert self.led.get_balance(self.led.address) == m.total_stake + m.pool
        assert m.total_stake == sum(m.stake_of.values())

    @invariant()
    def rewards_within_pool(self) -> None:
        m = self.model
        assert m.total_rewarded <= m.total_funded + m.total_slashed

    @invariant()
    def tree_weighs_the_eligible_capped_stake(self) -> None:
        c, m = self.led.contract, self.model
        want = sum(min(s, PARAMS.weight_cap) for a, s in m.stake_of.items()
                   if not m.unbonding[a] and s >= PARAMS.min_stake)
        assert c.eligible_stake() == sum(m.weight_of.values()) == want

    @invariant()
    def reclaims_within_leftover(self) -> None:
        m = self.model
        assert self.paid_back == m.reclaimed <= m.leftover
        assert self.led.contract.reclaimed() == m.reclaimed

    @invariant()
    def one_vote_per_voter_per_round(self) -> None:
        assert all(n == 1 for n in self.reveals.values())


LedgerMachine.TestCase.settings = settings(max_examples=8, stateful_step_count=60,
                                           deadline=None)
TestLedgerMachine = LedgerMachine.TestCase
