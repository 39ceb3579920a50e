"""Drive whole rounds of the ledger on any backend (protocol.md §4): the chain half of a round.

The protocol's round code calls the :class:`~phalanx.chain.ledger.Ledger` step by step; this
driver does the same for simulations, benchmarks and tests, with the peers' behaviour passed in
as functions. Randomness (beacon secrets, vote salts) comes from an injected ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from phalanx.chain.ledger import Attestation, ContractLedger, Roles
from phalanx.chain.model import Phase, Settlement, checksum


@dataclass(frozen=True, slots=True)
class RoundResult:
    """Roles and settlement of one driven round."""

    roles: Roles
    settlement: Settlement


def _honest_attestation(posted: Sequence[str], r: int) -> Attestation:
    return Attestation(result=r.to_bytes(32, "big"), accepted=tuple(posted))


@dataclass(slots=True)
class RoundDriver:
    """Plays rounds for a set of peers; keeps their beacon secrets between rounds."""

    ledger: ContractLedger
    rng: random.Random
    accounts: dict[str, LocalAccount] = field(default_factory=dict)
    secrets: dict[str, bytes] = field(default_factory=dict)  # secret committed for next round

    def _bytes(self) -> bytes:
        return self.rng.getrandbits(256).to_bytes(32, "big")

    def register_all(self, accounts: Sequence[LocalAccount], stakes: Sequence[int],
                     *, fund: bool = True) -> None:
        """Fund (dev chains), register, and commit a first beacon secret for every account
        the contract lets contribute to round 0's beacon (the first k)."""
        for acct, stake in zip(accounts, stakes, strict=True):
            a = checksum(acct.address)
            self.accounts[a] = acct
            if fund:
                self.ledger.faucet(a, stake + 10**18)
            self.ledger.register(acct, stake, self._bytes(), f"peer-{a[2:10]}")
            if self.ledger.may_commit_beacon(a):
                self.commit_beacon(acct)

    def commit_beacon(self, acct: LocalAccount) -> None:
        """Commit a fresh secret for the next round."""
        secret = self._bytes()
        self.ledger.commit_beacon(acct, secret)
        self.secrets[checksum(acct.address)] = secret

    def play_round(
        self,
        *,
        vote: Callable[[str], bool] = lambda voter: True,
        attest: Callable[[str, Roles], Attestation | None] | None = None,
        reveals: Callable[[str], bool] = lambda peer: True,
        posts: Callable[[str], bool] = lambda proposer: True,
        reveals_vote: Callable[[str, bool], bool] = lambda voter, accept: True,
        audit: tuple[LocalAccount, bool] | None = None,
        responds: Callable[[str], bool] = lambda proposer: True,
    ) -> RoundResult:
        """One full round: beacon, roles, bundles, attestations, votes, settlement.

        ``vote(voter)`` is its accept/reject; ``attest(member, roles)`` its attestation (None to
        stay silent; default: all attest the same result, accepting every posted bundle);
        ``reveals(peer)`` whether a beacon committer reveals; ``posts(proposer)`` whether a
        proposer posts its bundle hash; ``reveals_vote(voter, accept)`` whether a voter opens
        its ballot; ``audit`` = (auditor, bad): the auditor commits and reveals its verdict;
        ``responds(proposer)``: whether it posts a part-2 root (tasks with a response window).
        """
        led = self.ledger
        led.advance_to(Phase.BEACON)
        r = led.get_round_state().round
        pending = dict(self.secrets)
        self.secrets.clear()
        for a, secret in pending.items():
            if reveals(a):
                led.reveal_beacon(self.accounts[a], secret)
        led.advance_to(Phase.PROPOSE)
        anyone = next(iter(self.accounts.values()))
        led.close_beacon(anyone)
        roles = led.get_roles()
        for a in roles.committee + roles.proposers + roles.voters:  # next round's beacon
            if led.may_commit_beacon(a):
                self.commit_beacon(self.accounts[a])
        salt_audit = self._bytes()
        if audit is not None:
            led.audit_commit(audit[0], audit[1], salt_audit)
        posted = []
        for p in roles.proposers:
            if posts(p):
                led.post_bundle(self.accounts[p], self._bytes())
                posted.append(p)
        led.advance_to(Phase.ATTEST)
        if led.params.response_blocks:
            posted = [p for p in posted if responds(p)]
            for p in posted:
                led.post_response(self.accounts[p], self._bytes())
            led.mine(led.get_phase_end(Phase.PROPOSE) + led.params.response_blocks
                     - led.get_block())
        for c in roles.committee:
            att = attest(c, roles) if attest is not None else _honest_attestation(posted, r + 1)
            if att is not None:
                led.attest(self.accounts[c], att)
        stands = led.get_round_state().winning != b"\x00" * 32
        salts: dict[str, tuple[bool, bytes]] = {}
        if stands and roles.voters:
            led.advance_to(Phase.COMMIT)
            for v in roles.voters:
                salts[v] = (vote(v), self._bytes())
                led.commit_vote(self.accounts[v], *salts[v])
            led.advance_to(Phase.REVEAL)
            for v, (accept, salt) in salts.items():
                if reveals_vote(v, accept):
                    led.reveal_vote(self.accounts[v], accept, salt)
        if audit is not None:
            led.advance_to(Phase.REVEAL)
            led.audit_reveal(audit[0], audit[1], salt_audit)
        led.advance_to(Phase.SETTLE)
        return RoundResult(roles, led.settle(anyone))

    def get_stakes(self) -> Mapping[str, int]:
        """Current stake of every driven peer."""
        return {a: self.ledger.get_stake(a) for a in self.accounts}
