"""Helpers of the ledger contract tests: role-named actors and a ``World`` that walks a small
task through its phases on the embedded backend."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount

from phalanx.chain.embedded import EmbeddedLedger
from phalanx.chain.ledger import Attestation, Roles
from phalanx.chain.model import Phase, TaskParams, compute_vote_commitment

ETH = 10**18
Z = b"\x00" * 32
SMALL = TaskParams(
    min_stake=ETH, committee_size=4, threshold=1, n_proposers=3, n_voters=3, rounds=4,
    sigma_b=1000, sigma_c=2000, sigma_s=5000, sigma_v=1000, sigma_p=500, epsilon=500,
    registration_blocks=2, beacon_blocks=2, propose_blocks=2, attest_blocks=2,
    commit_blocks=2, reveal_blocks=2, unbond_delay=3,
)


def make_account(i: int) -> LocalAccount:
    """A deterministic account (key i+1000)."""
    return Account.from_key((i + 1000).to_bytes(32, "big"))


@dataclass
class World:
    """A deployed small task with registered peers, driven step by step."""

    led: EmbeddedLedger
    peers: list[LocalAccount]
    rng: random.Random
    secrets: dict[str, bytes] = field(default_factory=dict)

    @property
    def c(self):  # noqa: ANN201 - boa contract object
        return self.led.contract

    def by(self, address: str) -> LocalAccount:
        return next(p for p in self.peers if p.address == address)

    def rand32(self) -> bytes:
        return self.rng.getrandbits(256).to_bytes(32, "big")

    def commit_all(self) -> None:
        """Every peer the contract lets contribute now commits a fresh beacon secret."""
        for p in self.peers:
            if self.led.may_commit_beacon(p.address):
                s = self.rand32()
                self.led.commit_beacon(p, s)
                self.secrets[p.address] = s

    @property
    def committers(self) -> list[LocalAccount]:
        r = int(self.c.round())
        return [p for p in self.peers if p.address in self.c.get_beacon_committers(r)]

    def reveal_all(self) -> None:
        self.led.advance_to(Phase.BEACON)
        for p in self.committers:
            self.led.reveal_beacon(p, self.secrets[p.address])

    def draw(self) -> Roles:
        self.led.advance_to(Phase.PROPOSE)
        self.led.close_beacon(self.peers[0])
        return self.led.get_roles()

    def post_all(self, roles: Roles) -> None:
        for a in roles.proposers:
            self.led.post_bundle(self.by(a), self.rand32())

    def attest_all(self, roles: Roles, att: Attestation | None = None) -> Attestation:
        self.led.advance_to(Phase.ATTEST)
        posted = tuple(a for a in roles.proposers if self.c.bundle_of(self.c.round(), a) != Z)
        att = att if att is not None else Attestation(b"\x77" * 32, accepted=posted)
        for a in roles.committee:
            self.led.attest(self.by(a), att)
        return att

    def vote_all(self, roles: Roles, votes: list[bool]) -> dict[str, bytes]:
        self.led.advance_to(Phase.COMMIT)
        salts = {}
        for a, v in zip(roles.voters, votes, strict=True):
            salts[a] = self.rand32()
            self.led.commit_vote(self.by(a), v, salts[a])
        self.led.advance_to(Phase.REVEAL)
        for a, v in zip(roles.voters, votes, strict=True):
            self.led.reveal_vote(self.by(a), v, salts[a])
        return salts

    def vote_commitment(self, voter: str, accept: bool, salt: bytes) -> bytes:
        return compute_vote_commitment(int(self.c.round()), accept, salt, voter,
                                       self.led.chain_id, self.led.address)


def make_world(params: TaskParams = SMALL, n: int = 12, stakes: list[int] | None = None,
               seed: int = 7, pool: int = 100 * ETH) -> World:
    """Deploy ``params`` and register ``n`` peers (stakes default 1..n ETH) in the registration
    phase; the first k = seats of them commit a beacon secret for round 0."""
    deployer = make_account(999)
    led = EmbeddedLedger.deploy(params, deployer=deployer, pool=pool,
                                genesis_seed=bytes([seed]) * 32, initial_model=b"\x01" * 32)
    peers = [make_account(i) for i in range(n)]
    stakes = stakes if stakes is not None else [ETH * (i + 1) for i in range(n)]
    for p, s in zip(peers, stakes, strict=True):
        led.faucet(p.address, s + 10 * ETH)
        led.register(p, s, bytes(32), "127.0.0.1:1")
    w = World(led, peers, random.Random(seed))
    w.commit_all()
    return w
