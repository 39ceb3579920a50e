"""A pure Python mirror of ``contracts/Phalanx.vy`` (protocol.md §4), bit for bit.

Every integer the contract computes (budgets, reward splits with EVM truncating division,
slashes, beacon seeds, sortition seats, commitment and attestation hashes) is computed here the
same way, and :class:`LedgerModel` replays the contract's state machine: it raises
:class:`Reverted` with the contract's ``# dev:`` reason wherever the contract reverts. The
differential tests drive both with the same operations and compare.

Pure: no I/O, no clocks, no randomness; the block number is explicit state.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field
from enum import IntEnum
from typing import Any, TypeVar, cast

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from phalanx.errors import ChainError

MAX_PEERS = 256  # storage cap on registered peers (sortition is O(k*n) in memory)
MAX_COMMITTEE = 16  # m <= 16 covers t <= 3 with m >= 4t+1 identification
MAX_PROPOSERS = 32  # proposers per round
MAX_VOTERS = 32  # voters per round
MAX_ROLES = 64  # m + proposers + voters
MAX_ENDPOINT = 128  # bytes of a peer's endpoint string
BPS = 10_000  # fractions are basis points
DOMAIN_PERM, DOMAIN_SYSTEMATIC, DOMAIN_ROLES = 1, 2, 3
EMPTY = b"\x00" * 32
_M = TypeVar("_M", bound=Callable[..., Any])


class Phase(IntEnum):
    """Phases of a round, as ``get_phase()`` returns them."""

    REGISTRATION = 0
    BEACON = 1
    PROPOSE = 2
    ATTEST = 3
    COMMIT = 4
    REVEAL = 5
    SETTLE = 6
    FINISHED = 7


class Role(IntEnum):
    """A peer's role in a round (``role_of``)."""

    NONE = 0
    COMMITTEE = 1
    PROPOSER = 2
    VOTER = 3


class Vote(IntEnum):
    """A revealed vote (``vote_of``)."""

    NONE = 0
    ACCEPT = 1
    REJECT = 2


class SlashReason(IntEnum):
    """Why a stake was slashed (``Slashed.reason``)."""

    BEACON = 1
    CLIENT = 2
    SERVER = 3
    VOTER = 4
    PROPOSER = 5


class Reverted(ChainError):
    """A contract call reverted; ``reason`` is the ``# dev:`` comment when known."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"reverted: {reason}" + (f" ({detail})" if detail else ""))


def require(cond: bool, reason: str) -> None:
    """Revert with the contract's dev reason unless ``cond`` holds."""
    if not cond:
        raise Reverted(reason)


@dataclass(frozen=True, slots=True)
class TaskParams:
    """Task parameters, in the contract's field order (wei, basis points, blocks)."""

    min_stake: int
    committee_size: int
    threshold: int
    n_proposers: int
    n_voters: int
    rounds: int
    sigma_b: int = 1000
    sigma_c: int = 2000
    sigma_s: int = 5000
    sigma_v: int = 1000
    sigma_p: int = 0
    epsilon: int = 500
    registration_blocks: int = 0
    beacon_blocks: int = 1
    propose_blocks: int = 1
    attest_blocks: int = 1
    commit_blocks: int = 1
    reveal_blocks: int = 1
    unbond_delay: int = 1

    def as_tuple(self) -> tuple[int, ...]:
        """The ABI tuple the constructor takes."""
        return tuple(int(x) for x in astuple(self))

    @property
    def seats(self) -> int:
        """k = m + proposers + voters."""
        return self.committee_size + self.n_proposers + self.n_voters

    @property
    def quorum(self) -> int:
        """Attestations needed for a result to stand: m − t."""
        return self.committee_size - self.threshold

    def validate(self) -> None:
        """The constructor's checks."""
        require(self.min_stake > 0, "min_stake is zero")
        require(self.committee_size >= 3 * self.threshold + 1, "committee needs m >= 3t+1")
        require(self.committee_size <= MAX_COMMITTEE, "committee too large")
        require(1 <= self.n_proposers <= MAX_PROPOSERS, "bad n_proposers")
        require(1 <= self.n_voters <= MAX_VOTERS, "bad n_voters")
        require(self.seats <= MAX_ROLES, "too many roles")
        require(self.rounds > 0, "rounds is zero")
        fractions = (self.sigma_b, self.sigma_c, self.sigma_s, self.sigma_v, self.sigma_p)
        require(all(x <= BPS for x in fractions + (self.epsilon,)), "fraction above 1")
        phases = (self.beacon_blocks, self.propose_blocks, self.attest_blocks,
                  self.commit_blocks, self.reveal_blocks)
        require(all(x > 0 for x in phases), "empty phase")


# ------------------------------------------------------------------------------------------
# Pure integer and hash computations


def compute_rand(seed: bytes, domain: int, i: int) -> int:
    """uint256(keccak256(abi_encode(seed, domain, i)))."""
    return int.from_bytes(keccak(seed + domain.to_bytes(32, "big") + i.to_bytes(32, "big")), "big")


def compute_beacon_commitment(secret: bytes, sender: str, r: int) -> bytes:
    """keccak256(abi_encode(secret, sender, r)): binds the secret to its committer."""
    return keccak(abi_encode(["bytes32", "address", "uint256"], [secret, sender, r]))


def compute_vote_commitment(r: int, accept: bool, salt: bytes, sender: str) -> bytes:
    """keccak256(abi_encode(r, accept, salt, sender))."""
    return keccak(abi_encode(["uint256", "bool", "bytes32", "address"], [r, accept, salt, sender]))


def compute_attestation_hash(
    r: int, result: bytes, rejected: Sequence[str], reasons: Sequence[int], servers: Sequence[str]
) -> bytes:
    """keccak256(abi_encode(r, result, rejected, reasons, servers)): what m − t must agree on."""
    types = ["uint256", "bytes32", "address[]", "uint8[]", "address[]"]
    return keccak(abi_encode(types, [r, result, list(rejected), list(reasons), list(servers)]))


def compute_seed_start(prev_seed: bytes, r: int) -> bytes:
    """The beacon accumulator at the start of round r."""
    return keccak(prev_seed + r.to_bytes(32, "big"))


def compute_seed_step(seed: bytes, secret: bytes) -> bytes:
    """Fold one revealed secret into the accumulator, in reveal order."""
    return keccak(seed + secret)


def compute_budget(pool: int, rounds_left: int) -> int:
    """B_r = pool // rounds_left (EVM truncation)."""
    return pool // rounds_left


def compute_slash(stake: int, sigma_bps: int) -> int:
    """stake * sigma // 10_000."""
    return stake * sigma_bps // BPS


def compute_rewards(budget: int, stakes: Sequence[int]) -> list[int]:
    """Split ``budget`` in proportion to stake, each share truncated: budget*s_i // Σs."""
    weight = sum(stakes)
    if weight == 0:
        return [0 for _ in stakes]
    return [budget * s // weight for s in stakes]


def is_accept_vote(candidate_metric: float, current_metric: float, epsilon_bps: int) -> bool:
    """A voter accepts iff its metric on the candidate ≥ (1 − ε) × the current model's (§4)."""
    return candidate_metric >= (1.0 - epsilon_bps / BPS) * current_metric


def _shuffle(items: list[str], weights: list[int] | None, seed: bytes, domain: int) -> None:
    """In-place Fisher–Yates with keccak draws, as the contract does."""
    for i in range(len(items) - 1, 0, -1):
        s = compute_rand(seed, domain, i) % (i + 1)
        items[i], items[s] = items[s], items[i]
        if weights is not None:
            weights[i], weights[s] = weights[s], weights[i]


def compute_sortition(seed: bytes, candidates: Sequence[tuple[str, int]], k: int) -> list[str]:
    """Seats drawn from ``seed``: systematic PPS sampling without replacement (§4).

    ``candidates`` are (address, stake) of the eligible peers in registration-list order. A
    random order (Fisher–Yates), then take-all for any stake s with s·k_rem > S_rem (largest
    first), then k_rem systematic points u + j·S_rem over intervals of length s·k_rem. Every
    peer with s·k ≤ S is drawn with probability exactly s·k/S, so splitting a stake over many
    identities leaves its expected number of seats unchanged. Empty if fewer than k candidates.
    """
    n = len(candidates)
    if n < k:
        return []
    cands = [a for a, _ in candidates]
    stakes = [s for _, s in candidates]
    _shuffle(cands, stakes, seed, DOMAIN_PERM)
    taken = [False] * n
    out: list[str] = []
    k_rem, s_rem = k, sum(stakes)
    for _ in range(MAX_ROLES):
        if k_rem == 0:
            break
        best, best_pos = 0, 0
        for j in range(n):
            if not taken[j] and stakes[j] > best:
                best, best_pos = stakes[j], j
        if best * k_rem <= s_rem:
            break
        taken[best_pos] = True
        out.append(cands[best_pos])
        k_rem, s_rem = k_rem - 1, s_rem - best
    if k_rem > 0:
        u = compute_rand(seed, DOMAIN_SYSTEMATIC, 0) % s_rem
        acc, hits = 0, 0
        for j in range(n):
            if hits == k_rem:
                break
            if taken[j]:
                continue
            acc += stakes[j]
            if u + hits * s_rem < acc * k_rem:
                out.append(cands[j])
                hits += 1
    _shuffle(out, None, seed, DOMAIN_ROLES)
    return out


# ------------------------------------------------------------------------------------------
# The state machine


@dataclass(slots=True)
class Settlement:
    """What one ``settle()`` did (mirrors the RoundSettled, Slashed and Rewarded events)."""

    round: int
    stands: bool
    accepted: bool
    model: bytes
    accept_stake: int
    reject_stake: int
    budget: int
    paid: int
    rewards: dict[str, int] = field(default_factory=dict)
    slashes: list[tuple[str, SlashReason, int]] = field(default_factory=list)


def _atomic_draw(method: _M) -> _M:
    """Undo a lazy role draw when ``method`` reverts, as the EVM rolls the whole call back."""

    @functools.wraps(method)
    def wrapper(self: LedgerModel, *args: Any, **kwargs: Any) -> Any:
        drawn = self.roles_drawn
        try:
            return method(self, *args, **kwargs)
        except Reverted:
            if not drawn and self.roles_drawn:
                self._undraw_roles()
            raise

    return cast(_M, wrapper)


@dataclass(slots=True)
class Evidence:
    """One distinct attestation's content."""

    result: bytes
    rejected: list[str]
    reasons: list[int]
    servers: list[str]


@dataclass(slots=True)
class LedgerModel:
    """The contract's state and transitions; methods take the sender like a transaction."""

    params: TaskParams
    pool: int
    model_hash: bytes
    seed: bytes
    prev_seed: bytes
    round_start: int
    block: int
    rounds_left: int
    round: int = 0
    total_stake: int = 0
    total_funded: int = 0
    total_rewarded: int = 0
    total_slashed: int = 0
    peer_list: list[str] = field(default_factory=list)
    stake_of: dict[str, int] = field(default_factory=dict)
    since_round: dict[str, int] = field(default_factory=dict)
    unbond_round: dict[str, int] = field(default_factory=dict)
    withdraw_block: dict[str, int] = field(default_factory=dict)
    duty_round: dict[str, int] = field(default_factory=dict)
    roles_drawn: bool = False
    committee: list[str] = field(default_factory=list)
    proposers: list[str] = field(default_factory=list)
    voters: list[str] = field(default_factory=list)
    beacon_commit: dict[tuple[int, str], bytes] = field(default_factory=dict)
    beacon_revealed: set[tuple[int, str]] = field(default_factory=set)
    beacon_committers: dict[int, list[str]] = field(default_factory=dict)
    role_of: dict[tuple[int, str], Role] = field(default_factory=dict)
    bundle_of: dict[tuple[int, str], bytes] = field(default_factory=dict)
    x25519_of: dict[str, bytes] = field(default_factory=dict)
    endpoint_of: dict[str, str] = field(default_factory=dict)
    attestation_of: dict[tuple[int, str], bytes] = field(default_factory=dict)
    attestation_count: dict[bytes, int] = field(default_factory=dict)
    evidence: dict[bytes, Evidence] = field(default_factory=dict)
    winning: dict[int, bytes] = field(default_factory=dict)
    vote_commit: dict[tuple[int, str], bytes] = field(default_factory=dict)
    vote_of: dict[tuple[int, str], Vote] = field(default_factory=dict)

    @classmethod
    def create(
        cls, params: TaskParams, *, pool: int, genesis_seed: bytes, initial_model: bytes,
        block: int,
    ) -> LedgerModel:
        """Mirror of the constructor executed at ``block``."""
        params.validate()
        return cls(
            params=params, pool=pool, model_hash=initial_model,
            seed=compute_seed_start(genesis_seed, 0), prev_seed=genesis_seed,
            round_start=block + params.registration_blocks, block=block,
            rounds_left=params.rounds, total_funded=pool,
        )

    # -- views ------------------------------------------------------------------------------
    def get_phase(self) -> Phase:
        """The phase at ``self.block``."""
        if self.rounds_left == 0:
            return Phase.FINISHED
        p, b, s = self.params, self.block, self.round_start
        if b < s:
            return Phase.REGISTRATION
        for phase, length in (
            (Phase.BEACON, p.beacon_blocks), (Phase.PROPOSE, p.propose_blocks),
            (Phase.ATTEST, p.attest_blocks), (Phase.COMMIT, p.commit_blocks),
            (Phase.REVEAL, p.reveal_blocks),
        ):
            s += length
            if b < s:
                return phase
        return Phase.SETTLE

    def get_phase_end(self, phase: Phase) -> int:
        """First block after ``phase`` of the current round (its deadline)."""
        p = self.params
        lengths = [0, p.beacon_blocks, p.propose_blocks, p.attest_blocks, p.commit_blocks,
                   p.reveal_blocks]
        return self.round_start + sum(lengths[: int(phase) + 1])

    def is_eligible(self, a: str, r: int) -> bool:
        """Registered before r, not unbonded before r, staked ≥ min_stake."""
        if a not in self.stake_of or self.since_round[a] > r:
            return False
        u = self.unbond_round[a]
        if u != 0 and r >= u:
            return False
        return self.stake_of[a] >= self.params.min_stake

    def compute_sortition(self, seed: bytes, r: int) -> list[str]:
        """Mirror of the ``compute_sortition`` view."""
        cands = [(a, self.stake_of[a]) for a in self.peer_list if self.is_eligible(a, r)]
        return compute_sortition(seed, cands, self.params.seats)

    # -- stake ------------------------------------------------------------------------------
    def register(self, sender: str, value: int, x25519: bytes = b"\x00" * 32,
                 endpoint: str = "") -> None:
        """Mirror of ``register``."""
        require(self.rounds_left > 0, "task finished")
        require(sender not in self.stake_of, "already registered")
        require(value >= self.params.min_stake, "stake below minimum")
        require(len(self.peer_list) < MAX_PEERS, "too many peers")
        self.peer_list.append(sender)
        self.stake_of[sender] = value
        self.since_round[sender] = self.round + (1 if self.block >= self.round_start else 0)
        self.unbond_round[sender] = 0
        self.duty_round[sender] = 0
        self.total_stake += value
        self.x25519_of[sender] = bytes(x25519)
        self.endpoint_of[sender] = endpoint

    def fund(self, sender: str, value: int) -> None:
        """Mirror of ``fund``."""
        require(value > 0, "nothing sent")
        self.pool += value
        self.total_funded += value

    def unbond(self, sender: str) -> None:
        """Mirror of ``unbond``."""
        require(sender in self.stake_of, "not registered")
        require(self.unbond_round[sender] == 0, "already unbonding")
        last = self.round + 1
        self.unbond_round[sender] = last
        self.duty_round[sender] = max(self.duty_round[sender], last)
        self.withdraw_block[sender] = self.block + self.params.unbond_delay

    def withdraw(self, sender: str) -> int:
        """Mirror of ``withdraw``; returns the amount paid."""
        require(sender in self.stake_of, "not registered")
        require(self.unbond_round[sender] != 0, "not unbonding")
        require(self.block >= self.withdraw_block[sender], "unbonding delay")
        require(self.rounds_left == 0 or self.round >= self.duty_round[sender], "duty pending")
        amount = self.stake_of.pop(sender)
        pos = self.peer_list.index(sender)
        self.peer_list[pos] = self.peer_list[-1]
        self.peer_list.pop()
        del self.since_round[sender], self.unbond_round[sender]
        self.total_stake -= amount
        return amount

    # -- beacon -----------------------------------------------------------------------------
    def commit_beacon(self, sender: str, commitment: bytes) -> None:
        """Mirror of ``commit_beacon``."""
        require(self.rounds_left > 0, "task finished")
        require(sender in self.stake_of, "not registered")
        require(self.unbond_round[sender] == 0, "unbonding")
        target = self.round + (1 if self.block >= self.round_start else 0)
        require((target, sender) not in self.beacon_commit, "already committed")
        require(commitment != EMPTY, "empty commitment")
        self.beacon_commit[(target, sender)] = commitment
        self.beacon_committers.setdefault(target, []).append(sender)
        self.duty_round[sender] = max(self.duty_round[sender], target + 1)

    def reveal_beacon(self, sender: str, secret: bytes) -> None:
        """Mirror of ``reveal_beacon``."""
        require(self.get_phase() == Phase.BEACON, "not beacon phase")
        r = self.round
        c = self.beacon_commit.get((r, sender), EMPTY)
        require(c != EMPTY, "no commitment")
        require((r, sender) not in self.beacon_revealed, "already revealed")
        require(compute_beacon_commitment(secret, sender, r) == c, "bad reveal")
        self.beacon_revealed.add((r, sender))
        self.seed = compute_seed_step(self.seed, secret)

    def _draw_roles(self) -> None:
        if self.roles_drawn:
            return
        seats = self.compute_sortition(self.seed, self.round)
        m, np_ = self.params.committee_size, self.params.n_proposers
        self.committee, self.proposers = seats[:m], seats[m : m + np_]
        self.voters = seats[m + np_ :]
        for group, role in ((self.committee, Role.COMMITTEE), (self.proposers, Role.PROPOSER),
                            (self.voters, Role.VOTER)):
            for a in group:
                self.role_of[(self.round, a)] = role
        self.roles_drawn = True

    def close_beacon(self, sender: str) -> None:
        """Mirror of ``close_beacon``."""
        require(Phase.PROPOSE <= self.get_phase() <= Phase.SETTLE, "beacon still open")
        require(not self.roles_drawn, "roles already drawn")
        self._draw_roles()

    def _in_phase(self, phase: Phase) -> None:
        require(self.get_phase() == phase, "wrong phase")
        self._draw_roles()

    def _undraw_roles(self) -> None:
        """Roll back a lazy draw made by a call that then reverted (the EVM undoes it too)."""
        for a in self.committee + self.proposers + self.voters:
            self.role_of.pop((self.round, a), None)
        self.committee, self.proposers, self.voters = [], [], []
        self.roles_drawn = False

    def get_role(self, a: str) -> Role:
        """The role of ``a`` in the current round (NONE until drawn)."""
        return self.role_of.get((self.round, a), Role.NONE)

    # -- proposers and committee ------------------------------------------------------------
    @_atomic_draw
    def post_bundle(self, sender: str, root: bytes) -> None:
        """Mirror of ``post_bundle``."""
        self._in_phase(Phase.PROPOSE)
        r = self.round
        require(self.get_role(sender) == Role.PROPOSER, "not a proposer")
        require((r, sender) not in self.bundle_of, "already posted")
        require(root != EMPTY, "empty root")
        self.bundle_of[(r, sender)] = root

    @_atomic_draw
    def attest(
        self, sender: str, result: bytes, rejected: Sequence[str], reasons: Sequence[int],
        servers: Sequence[str],
    ) -> bytes:
        """Mirror of ``attest``; returns the attestation hash."""
        self._in_phase(Phase.ATTEST)
        r = self.round
        require(self.get_role(sender) == Role.COMMITTEE, "not in committee")
        require((r, sender) not in self.attestation_of, "already attested")
        require(result != EMPTY, "empty result")
        require(len(reasons) == len(rejected), "reasons length")
        for i, c in enumerate(rejected):
            require((r, c) in self.bundle_of, "rejected without bundle")
            require(c not in rejected[:i], "duplicate client")
        for i, s in enumerate(servers):
            require(self.role_of.get((r, s)) == Role.COMMITTEE, "server not in committee")
            require(s not in servers[:i], "duplicate server")
        h = compute_attestation_hash(r, result, rejected, reasons, servers)
        self.attestation_of[(r, sender)] = h
        n = self.attestation_count.get(h, 0) + 1
        self.attestation_count[h] = n
        if n == 1:
            self.evidence[h] = Evidence(result, list(rejected), list(reasons), list(servers))
        if n == self.params.quorum and r not in self.winning:
            self.winning[r] = h
        return h

    # -- voters -----------------------------------------------------------------------------
    @_atomic_draw
    def commit_vote(self, sender: str, commitment: bytes) -> None:
        """Mirror of ``commit_vote``."""
        self._in_phase(Phase.COMMIT)
        r = self.round
        require(self.get_role(sender) == Role.VOTER, "not a voter")
        require(r in self.winning, "no standing result")
        require((r, sender) not in self.vote_commit, "already committed")
        require(commitment != EMPTY, "empty commitment")
        self.vote_commit[(r, sender)] = commitment

    @_atomic_draw
    def reveal_vote(self, sender: str, accept: bool, salt: bytes) -> None:
        """Mirror of ``reveal_vote``."""
        self._in_phase(Phase.REVEAL)
        r = self.round
        c = self.vote_commit.get((r, sender), EMPTY)
        require(c != EMPTY, "no vote commitment")
        require((r, sender) not in self.vote_of, "already revealed")
        require(compute_vote_commitment(r, accept, salt, sender) == c, "bad reveal")
        self.vote_of[(r, sender)] = Vote.ACCEPT if accept else Vote.REJECT

    # -- settlement -------------------------------------------------------------------------
    def _slash(self, out: Settlement, a: str, sigma: int, reason: SlashReason) -> None:
        amt = compute_slash(self.stake_of[a], sigma)
        if amt == 0:
            return
        self.stake_of[a] -= amt
        self.total_stake -= amt
        self.pool += amt
        self.total_slashed += amt
        out.slashes.append((a, reason, amt))

    def settle(self, sender: str) -> Settlement:
        """Mirror of ``settle`` (same order of slashes and rewards)."""
        require(self.get_phase() == Phase.SETTLE, "not settle phase")
        self._draw_roles()
        p, r = self.params, self.round
        budget = compute_budget(self.pool, self.rounds_left)
        out = Settlement(r, False, False, self.model_hash, 0, 0, budget, 0)
        for a in self.beacon_committers.get(r, []):
            if (r, a) not in self.beacon_revealed:
                self._slash(out, a, p.sigma_b, SlashReason.BEACON)
        h = self.winning.get(r)
        rewarded: list[str] = []
        if h is not None:
            out.stands = True
            ev = self.evidence[h]
            for a in ev.rejected:
                self._slash(out, a, p.sigma_c, SlashReason.CLIENT)
            for a in ev.servers:
                self._slash(out, a, p.sigma_s, SlashReason.SERVER)
            votes = [(a, self.vote_of.get((r, a), Vote.NONE)) for a in self.voters]
            out.accept_stake = sum(self.stake_of[a] for a, v in votes if v == Vote.ACCEPT)
            out.reject_stake = sum(self.stake_of[a] for a, v in votes if v == Vote.REJECT)
            out.accepted = out.accept_stake >= out.reject_stake
            good = [a for a in self.proposers
                    if (r, a) in self.bundle_of and a not in ev.rejected]
            win, lose = (Vote.ACCEPT, Vote.REJECT) if out.accepted else (Vote.REJECT, Vote.ACCEPT)
            if out.accepted:
                self.model_hash = ev.result
                rewarded += good
                rewarded += [a for a in self.committee if self.attestation_of.get((r, a)) == h
                             and a not in ev.servers]
            for a, v in votes:
                if v == win:
                    rewarded.append(a)
                elif v == lose:
                    self._slash(out, a, p.sigma_v, SlashReason.VOTER)
            if not out.accepted:
                for a in good:
                    self._slash(out, a, p.sigma_p, SlashReason.PROPOSER)
            shares = compute_rewards(budget, [self.stake_of[a] for a in rewarded])
            for a, amt in zip(rewarded, shares, strict=True):
                self.stake_of[a] += amt
                out.rewards[a] = amt
            out.paid = sum(shares)
            self.pool -= out.paid
            self.total_stake += out.paid
            self.total_rewarded += out.paid
        out.model = self.model_hash
        self._start_next_round()
        return out

    def _start_next_round(self) -> None:
        r = self.round
        self.rounds_left -= 1
        self.round = r + 1
        self.round_start = self.block
        self.prev_seed = self.seed
        self.seed = compute_seed_start(self.seed, r + 1)
        self.roles_drawn = False
        self.committee, self.proposers, self.voters = [], [], []


def checksum(address: str) -> str:
    """The EIP-55 form of an address, as both backends return them."""
    return str(to_checksum_address(address))
