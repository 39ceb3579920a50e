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

from phalanx.errors import ChainError, ConfigError

# Compile-time maxima of the contract; each task declares its limits in TaskParams
MAX_PEERS = 16384  # sortition tree slots (a power of two): registered peers at once
TREE_LOG = 14  # log2(MAX_PEERS)
MAX_COMMITTEE = 128  # committee size m (the calculator's m = 55 at 10% corrupt, 1e-6 fits)
MAX_PROPOSERS = 128  # proposers per round (also caps the accepted / rejected lists)
MAX_VOTERS = 128  # voters per round
MAX_ROLES = 256  # m + proposers + voters (also the beacon contributors per round)
MAX_ENDPOINT = 128  # bytes of a peer's endpoint string
BPS = 10_000  # fractions are basis points
DOMAIN_DRAW = 4
EMPTY = b"\x00" * 32
#: the ``model`` backend's nominal chain id and task address (commitments bind both)
MODEL_CHAIN_ID = 1
MODEL_ADDRESS = "0x" + "ab" * 20
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

    BEACON = 1  # beacon commitment not revealed (σ_b)
    CLIENT = 2  # rejected client (σ_c)
    SERVER = 3  # identified server (σ_s)
    VOTER = 4  # unused since issue 11 (losing an ordinary vote is not slashed); code kept
    PROPOSER = 5  # proposer missed its delivery (σ_p)
    MEMBER = 6  # member silent, or attested another result than the accepted one (σ_m)
    WITHHELD = 7  # drawn voter that did not reveal (σ_v)
    AUDIT = 8  # voter accepted an audited known-bad candidate (σ_v)


class Outcome(IntEnum):
    """How a round settled (``RoundSettled.outcome``)."""

    VOID = 0  # no standing result
    ACCEPTED = 1
    REJECTED = 2
    UNDECIDED = 3  # no quorum of revealed voter stake, or a tie
    AUDITED = 4  # the auditor revealed a known-bad candidate


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
    """Task parameters, in the contract's field order (wei, basis points, blocks).

    ``sigma_v``: a drawn voter that did not reveal, or accepted an audited known-bad candidate
    (losing an ordinary vote only forfeits the reward); ``sigma_p``: a proposer that missed its
    delivery (no bundle, or a bundle the standing, accepted attestation neither accepted nor
    rejected); ``sigma_m``: a committee member that
    stayed silent or attested another result than the accepted one; ``vote_quorum``: share of
    the drawn voters' stake that must reveal for the vote to decide; ``max_peers``: registered
    peers at once (at most ``MAX_PEERS``); ``weight_cap``: a peer's sortition weight is
    min(stake, weight_cap) (wei; 0: its stake), so compounded rewards do not dilute the draw
    odds of the other peers (economics.md, "Strategic adversary").
    """

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
    sigma_m: int = 1000
    vote_quorum: int = 5000
    max_peers: int = 10_000
    response_blocks: int = 0
    weight_cap: int = 0

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
        """The constructor's checks (``Reverted`` with the contract's dev reason)."""
        require(self.min_stake >= BPS, "min_stake below BPS=10000 (slashes would round to 0)")
        require(self.committee_size >= 3 * self.threshold + 1, "committee needs m >= 3t+1")
        require(self.committee_size <= MAX_COMMITTEE, "committee_size above MAX_COMMITTEE=128")
        require(self.n_proposers >= 1, "n_proposers is zero")
        require(self.n_proposers <= MAX_PROPOSERS, "n_proposers above MAX_PROPOSERS=128")
        require(self.n_voters >= 1, "n_voters is zero")
        require(self.n_voters <= MAX_VOTERS, "n_voters above MAX_VOTERS=128")
        require(self.seats <= MAX_ROLES, "seats above MAX_ROLES=256")
        require(self.max_peers >= self.seats, "max_peers below seats")
        require(self.max_peers <= MAX_PEERS, "max_peers above MAX_PEERS=16384")
        require(self.rounds > 0, "rounds is zero")
        fractions = (self.sigma_b, self.sigma_c, self.sigma_s, self.sigma_v, self.sigma_p,
                     self.epsilon, self.sigma_m, self.vote_quorum)
        require(all(x <= BPS for x in fractions), "fraction above 1")
        require(self.vote_quorum > 0, "vote_quorum is zero")
        phases = (self.beacon_blocks, self.propose_blocks, self.attest_blocks,
                  self.commit_blocks, self.reveal_blocks)
        require(all(x > 0 for x in phases), "empty phase")
        require(self.response_blocks < self.attest_blocks, "response window not inside attest")
        require(self.weight_cap == 0 or self.weight_cap >= self.min_stake,
                "weight_cap below min_stake")

    def check(self) -> None:
        """The constructor's checks as a ``ConfigError`` naming the parameter, its value and
        the cap (what ``make_ledger`` runs before deploying on any backend)."""
        caps = (("committee_size", self.committee_size, MAX_COMMITTEE, "MAX_COMMITTEE"),
                ("n_proposers", self.n_proposers, MAX_PROPOSERS, "MAX_PROPOSERS"),
                ("n_voters", self.n_voters, MAX_VOTERS, "MAX_VOTERS"),
                ("seats (committee_size + n_proposers + n_voters)", self.seats, MAX_ROLES,
                 "MAX_ROLES"),
                ("max_peers", self.max_peers, MAX_PEERS, "MAX_PEERS"))
        for name, value, cap, cap_name in caps:
            if value > cap:
                raise ConfigError(f"{name}={value} exceeds the contract's {cap_name}={cap}")
        for name in ("n_proposers", "n_voters", "rounds", "vote_quorum"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if self.min_stake < BPS:
            raise ConfigError(f"min_stake={self.min_stake} wei is below the slash denominator "
                              f"BPS={BPS}: every slash would round to 0")
        if self.max_peers < self.seats:
            raise ConfigError(f"max_peers={self.max_peers} is below the seats k={self.seats}")
        if 0 < self.weight_cap < self.min_stake:
            raise ConfigError(f"weight_cap={self.weight_cap} wei is below min_stake="
                              f"{self.min_stake} (0 means no cap)")
        try:
            self.validate()
        except Reverted as e:
            raise ConfigError(f"task parameters rejected: {e.reason} ({self})") from e


# ------------------------------------------------------------------------------------------
# Pure integer and hash computations


def compute_rand(seed: bytes, domain: int, i: int) -> int:
    """uint256(keccak256(abi_encode(seed, domain, i)))."""
    return int.from_bytes(keccak(seed + domain.to_bytes(32, "big") + i.to_bytes(32, "big")), "big")


def compute_beacon_commitment(secret: bytes, sender: str, r: int, chain_id: int = MODEL_CHAIN_ID,
                              contract: str = MODEL_ADDRESS) -> bytes:
    """keccak256(abi_encode(chain_id, contract, secret, sender, r)): binds the secret to its
    committer, round, chain and task, so it cannot be copied or replayed elsewhere."""
    return keccak(abi_encode(["uint256", "address", "bytes32", "address", "uint256"],
                             [chain_id, contract, secret, sender, r]))


def compute_vote_commitment(r: int, accept: bool, salt: bytes, sender: str,
                            chain_id: int = MODEL_CHAIN_ID,
                            contract: str = MODEL_ADDRESS) -> bytes:
    """keccak256(abi_encode(chain_id, contract, r, accept, salt, sender))."""
    return keccak(abi_encode(["uint256", "address", "uint256", "bool", "bytes32", "address"],
                             [chain_id, contract, r, accept, salt, sender]))


def compute_audit_commitment(r: int, bad: bool, salt: bytes, chain_id: int = MODEL_CHAIN_ID,
                             contract: str = MODEL_ADDRESS) -> bytes:
    """keccak256(abi_encode(chain_id, contract, r, bad, salt)): the auditor's hidden verdict."""
    return keccak(abi_encode(["uint256", "address", "uint256", "bool", "bytes32"],
                             [chain_id, contract, r, bad, salt]))


def compute_attestation_hash(
    r: int, result: bytes, accepted: Sequence[str], rejected: Sequence[str],
    reasons: Sequence[int], servers: Sequence[str],
) -> bytes:
    """keccak256(abi_encode(r, result, accepted, rejected, reasons, servers)): what m − t must
    agree on for the result to stand."""
    types = ["uint256", "bytes32", "address[]", "address[]", "uint8[]", "address[]"]
    return keccak(abi_encode(types, [r, result, list(accepted), list(rejected), list(reasons),
                                     list(servers)]))


def compute_seed_start(prev_seed: bytes, r: int) -> bytes:
    """The round's seed before any reveal: keccak256(prev_seed, r)."""
    return keccak(prev_seed + r.to_bytes(32, "big"))


def compute_beacon_share(secret: bytes, sender: str) -> bytes:
    """keccak256(abi_encode(secret, sender)): one reveal's contribution to the XOR mix."""
    return keccak(abi_encode(["bytes32", "address"], [secret, sender]))


def compute_seed(seed_start: bytes, reveals: Sequence[tuple[bytes, str]]) -> bytes:
    """The seed after ``reveals`` (secret, sender), in any order: keccak256(start, XOR of the
    shares); ``seed_start`` itself when nothing was revealed."""
    if not reveals:
        return seed_start
    mix = 0
    for secret, sender in reveals:
        mix ^= int.from_bytes(compute_beacon_share(secret, sender), "big")
    return keccak(seed_start + mix.to_bytes(32, "big"))


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


def compute_sortition(seed: bytes, candidates: Sequence[tuple[str, int]], k: int,
                      slots: Sequence[int] | None = None) -> list[str]:
    """Seats drawn from ``seed``: k stake-weighted draws without replacement (§4).

    ``candidates`` are (address, stake) of the eligible peers in slot order (``slots``, the
    contract's tree positions; default 1, 2, ...). Draw j takes u = keccak(seed, 4, j) mod the
    remaining stake and the candidate whose interval of the cumulative remaining stake (in slot
    order) contains u — what the contract's Fenwick-tree descent finds in O(log n). Empty if
    fewer than k candidates. The first m seats are the committee, then proposers, then voters.
    """
    live = [(a, s) for a, s in candidates if s > 0]
    if len(live) < k:
        return []
    del slots  # the order of ``candidates`` is the slot order
    remaining = list(live)
    total = sum(s for _, s in remaining)
    out: list[str] = []
    for j in range(k):
        u = compute_rand(seed, DOMAIN_DRAW, j) % total
        acc = 0
        for i, (a, s) in enumerate(remaining):
            acc += s
            if acc > u:
                out.append(a)
                total -= s
                del remaining[i]
                break
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
    outcome: Outcome = Outcome.VOID


def _atomic(method: _M) -> _M:
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
    accepted: list[str]
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
    auditor: str = ""
    chain_id: int = MODEL_CHAIN_ID
    address: str = MODEL_ADDRESS
    round: int = 0
    seed_start: bytes = EMPTY
    beacon_mix: int = 0
    total_stake: int = 0
    total_funded: int = 0
    total_rewarded: int = 0
    total_slashed: int = 0
    funded_by: dict[str, int] = field(default_factory=dict)
    leftover: int = 0
    reclaimed: int = 0
    slot_of: dict[str, int] = field(default_factory=dict)
    peer_at: dict[int, str] = field(default_factory=dict)
    slots_used: int = 0
    free_slots: list[int] = field(default_factory=list)
    weight_of: dict[int, int] = field(default_factory=dict)
    stake_of: dict[str, int] = field(default_factory=dict)
    since_round: dict[str, int] = field(default_factory=dict)
    unbonding: dict[str, bool] = field(default_factory=dict)
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
    response_of: dict[tuple[int, str], bytes] = field(default_factory=dict)
    x25519_of: dict[str, bytes] = field(default_factory=dict)
    endpoint_of: dict[str, str] = field(default_factory=dict)
    attestation_of: dict[tuple[int, str], bytes] = field(default_factory=dict)
    attestation_count: dict[bytes, int] = field(default_factory=dict)
    evidence: dict[bytes, Evidence] = field(default_factory=dict)
    winning: dict[int, bytes] = field(default_factory=dict)
    vote_commit: dict[tuple[int, str], bytes] = field(default_factory=dict)
    vote_of: dict[tuple[int, str], Vote] = field(default_factory=dict)
    audit_commit_of: dict[int, bytes] = field(default_factory=dict)
    audit_bad: dict[int, bool] = field(default_factory=dict)

    @classmethod
    def create(
        cls, params: TaskParams, *, pool: int, genesis_seed: bytes, initial_model: bytes,
        block: int, deployer: str = "", chain_id: int = MODEL_CHAIN_ID,
        address: str = MODEL_ADDRESS,
    ) -> LedgerModel:
        """Mirror of the constructor executed at ``block`` by ``deployer`` (funder, auditor)."""
        params.validate()
        start = compute_seed_start(genesis_seed, 0)
        return cls(
            params=params, pool=pool, model_hash=initial_model, seed=start,
            prev_seed=genesis_seed, round_start=block + params.registration_blocks, block=block,
            rounds_left=params.rounds, total_funded=pool, auditor=deployer, chain_id=chain_id,
            address=address, seed_start=start, funded_by={deployer: pool} if pool else {},
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

    @property
    def peer_count(self) -> int:
        """Registered peers (unbonding ones included, withdrawn ones not)."""
        return len(self.slot_of)

    @property
    def n_eligible(self) -> int:
        """Slots of positive weight in the sortition tree."""
        return sum(1 for w in self.weight_of.values() if w > 0)

    @property
    def eligible_stake(self) -> int:
        """The tree's total weight."""
        return sum(self.weight_of.values())

    def is_eligible(self, a: str, r: int) -> bool:
        """Registered before r, not unbonded before r, staked ≥ min_stake."""
        if a not in self.slot_of or self.since_round[a] > r:
            return False
        if self.unbonding[a] and r >= self.unbond_round[a]:
            return False
        return self.stake_of[a] >= self.params.min_stake

    def compute_sortition(self, seed: bytes, r: int = 0) -> list[str]:
        """Mirror of the ``compute_sortition`` view (over the current tree)."""
        cands = [(self.peer_at[s], self.weight_of[s]) for s in sorted(self.weight_of)
                 if self.weight_of[s] > 0]
        return compute_sortition(seed, cands, self.params.seats)

    def can_commit_beacon(self, a: str) -> bool:
        """Mirror of the ``can_commit_beacon`` view."""
        if self.rounds_left == 0 or a not in self.slot_of or self.unbonding[a]:
            return False
        ph, r = self.get_phase(), self.round
        if ph == Phase.REGISTRATION:
            return ((r, a) not in self.beacon_commit
                    and len(self.beacon_committers.get(r, [])) < self.params.seats)
        if ph == Phase.BEACON or not self.roles_drawn:
            return False
        return (r, a) in self.role_of and (r + 1, a) not in self.beacon_commit

    # -- tree -------------------------------------------------------------------------------
    def _sync(self, a: str) -> None:
        slot = self.slot_of.get(a)
        if slot is None:
            return
        ok = not self.unbonding[a] and self.stake_of[a] >= self.params.min_stake
        self.weight_of[slot] = self._weight(self.stake_of[a]) if ok else 0

    def _weight(self, stake: int) -> int:
        """A bonded, staked peer's sortition weight: min(stake, weight_cap) (cap 0: none)."""
        cap = self.params.weight_cap
        return min(stake, cap) if cap else stake

    def _freeze_for_change(self) -> None:
        ph = self.get_phase()
        require(ph != Phase.BEACON, "beacon open")
        if Phase.PROPOSE <= ph <= Phase.SETTLE:
            self._draw_roles()

    # -- stake ------------------------------------------------------------------------------
    @_atomic
    def register(self, sender: str, value: int, x25519: bytes = EMPTY,
                 endpoint: str = "") -> None:
        """Mirror of ``register``."""
        require(self.rounds_left > 0, "task finished")
        require(sender not in self.slot_of, "already registered")
        require(value >= self.params.min_stake, "stake below minimum")
        require(self.peer_count < self.params.max_peers, "too many peers")
        self._freeze_for_change()
        if self.free_slots:
            slot = self.free_slots.pop()
        else:
            self.slots_used += 1
            slot = self.slots_used
        self.slot_of[sender] = slot
        self.peer_at[slot] = sender
        self.stake_of[sender] = value
        self.since_round[sender] = self.round + (1 if self.block >= self.round_start else 0)
        self.unbonding[sender] = False
        self.unbond_round[sender] = 0
        self.duty_round[sender] = 0
        self.total_stake += value
        self.x25519_of[sender] = bytes(x25519)
        self.endpoint_of[sender] = endpoint
        self.weight_of[slot] = self._weight(value)

    def fund(self, sender: str, value: int) -> None:
        """Mirror of ``fund``."""
        require(self.rounds_left > 0, "task finished")
        require(value > 0, "nothing sent")
        self.pool += value
        self.total_funded += value
        self.funded_by[sender] = self.funded_by.get(sender, 0) + value

    def reclaim(self, sender: str) -> int:
        """Mirror of ``reclaim``; returns the amount paid."""
        require(self.rounds_left == 0, "task not finished")
        f = self.funded_by.get(sender, 0)
        require(f > 0, "nothing to reclaim")
        amount = self.leftover * f // self.total_funded
        self.funded_by[sender] = 0
        self.pool -= amount
        self.reclaimed += amount
        return amount

    @_atomic
    def unbond(self, sender: str) -> None:
        """Mirror of ``unbond``."""
        require(sender in self.slot_of, "not registered")
        require(not self.unbonding[sender], "already unbonding")
        self._freeze_for_change()
        self.unbonding[sender] = True
        self.unbond_round[sender] = self.round + (1 if self.block >= self.round_start else 0)
        self.duty_round[sender] = max(self.duty_round[sender], self.round + 1)
        self.withdraw_block[sender] = self.block + self.params.unbond_delay
        self._sync(sender)

    def withdraw(self, sender: str) -> int:
        """Mirror of ``withdraw``; returns the amount paid."""
        require(sender in self.slot_of, "not registered")
        require(self.unbonding[sender], "not unbonding")
        require(self.block >= self.withdraw_block[sender], "unbonding delay")
        require(self.rounds_left == 0 or self.round >= self.duty_round[sender], "duty pending")
        amount = self.stake_of.pop(sender)
        slot = self.slot_of.pop(sender)
        del self.peer_at[slot]
        self.free_slots.append(slot)
        self.unbonding[sender] = False
        self.total_stake -= amount
        return amount

    # -- beacon -----------------------------------------------------------------------------
    @_atomic
    def commit_beacon(self, sender: str, commitment: bytes) -> None:
        """Mirror of ``commit_beacon``."""
        require(self.rounds_left > 0, "task finished")
        require(sender in self.slot_of, "not registered")
        require(not self.unbonding[sender], "unbonding")
        require(commitment != EMPTY, "empty commitment")
        ph, target = self.get_phase(), self.round
        if ph == Phase.REGISTRATION:
            require(len(self.beacon_committers.get(target, [])) < self.params.seats,
                    "beacon full")
        else:
            require(ph != Phase.BEACON, "roles not drawn")
            self._draw_roles()
            require((target, sender) in self.role_of, "no role this round")
            target += 1
        require((target, sender) not in self.beacon_commit, "already committed")
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
        require(compute_beacon_commitment(secret, sender, r, self.chain_id, self.address) == c,
                "bad reveal")
        self.beacon_revealed.add((r, sender))
        self.beacon_mix ^= int.from_bytes(compute_beacon_share(secret, sender), "big")
        self.seed = keccak(self.seed_start + self.beacon_mix.to_bytes(32, "big"))

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
    @_atomic
    def post_bundle(self, sender: str, root: bytes) -> None:
        """Mirror of ``post_bundle``."""
        self._in_phase(Phase.PROPOSE)
        r = self.round
        require(self.get_role(sender) == Role.PROPOSER, "not a proposer")
        require((r, sender) not in self.bundle_of, "already posted")
        require(root != EMPTY, "empty root")
        self.bundle_of[(r, sender)] = root

    def _response_end(self) -> int:
        p = self.params
        return self.round_start + p.beacon_blocks + p.propose_blocks + p.response_blocks

    @_atomic
    def post_response(self, sender: str, root: bytes) -> None:
        """Mirror of ``post_response`` (part-2 root, inside the response window)."""
        self._in_phase(Phase.ATTEST)
        require(self.block < self._response_end(), "response window closed")
        r = self.round
        require(self.get_role(sender) == Role.PROPOSER, "not a proposer")
        require((r, sender) in self.bundle_of, "no bundle")
        require((r, sender) not in self.response_of, "already responded")
        require(root != EMPTY, "empty root")
        self.response_of[(r, sender)] = root

    def _responded(self, a: str) -> bool:
        """Posted its part-2 root, or the task has no response window."""
        return self.params.response_blocks == 0 or (self.round, a) in self.response_of

    @_atomic
    def attest(
        self, sender: str, result: bytes, accepted: Sequence[str], rejected: Sequence[str],
        reasons: Sequence[int], servers: Sequence[str],
    ) -> bytes:
        """Mirror of ``attest``; returns the attestation hash."""
        self._in_phase(Phase.ATTEST)
        require(self.block >= self._response_end(), "response window open")
        r = self.round
        require(self.get_role(sender) == Role.COMMITTEE, "not in committee")
        require((r, sender) not in self.attestation_of, "already attested")
        require(result != EMPTY, "empty result")
        require(len(reasons) == len(rejected), "reasons length")
        for name, xs in (("accepted", accepted), ("rejected", rejected)):
            prev = 0
            for c in xs:
                require(int(c, 16) > prev, f"{name} not sorted")
                prev = int(c, 16)
                require((r, c) in self.bundle_of, f"{name} without bundle")
                if name == "accepted":
                    require(self._responded(c), "accepted without response")
        require(not set(accepted) & set(rejected), "accepted and rejected")
        prev = 0
        for s in servers:
            require(int(s, 16) > prev, "servers not sorted")
            prev = int(s, 16)
            require(self.role_of.get((r, s)) == Role.COMMITTEE, "server not in committee")
        h = compute_attestation_hash(r, result, accepted, rejected, reasons, servers)
        self.attestation_of[(r, sender)] = h
        n = self.attestation_count.get(h, 0) + 1
        self.attestation_count[h] = n
        if n == 1:
            self.evidence[h] = Evidence(result, list(accepted), list(rejected), list(reasons),
                                        list(servers))
        if n == self.params.quorum and r not in self.winning:
            self.winning[r] = h
        return h

    # -- voters and the auditor -------------------------------------------------------------
    @_atomic
    def commit_vote(self, sender: str, commitment: bytes) -> None:
        """Mirror of ``commit_vote``."""
        self._in_phase(Phase.COMMIT)
        r = self.round
        require(self.get_role(sender) == Role.VOTER, "not a voter")
        require(r in self.winning, "no standing result")
        require((r, sender) not in self.vote_commit, "already committed")
        require(commitment != EMPTY, "empty commitment")
        self.vote_commit[(r, sender)] = commitment

    @_atomic
    def reveal_vote(self, sender: str, accept: bool, salt: bytes) -> None:
        """Mirror of ``reveal_vote``."""
        self._in_phase(Phase.REVEAL)
        r = self.round
        c = self.vote_commit.get((r, sender), EMPTY)
        require(c != EMPTY, "no vote commitment")
        require((r, sender) not in self.vote_of, "already revealed")
        require(compute_vote_commitment(r, accept, salt, sender, self.chain_id,
                                        self.address) == c, "bad reveal")
        self.vote_of[(r, sender)] = Vote.ACCEPT if accept else Vote.REJECT

    def audit_commit(self, sender: str, commitment: bytes) -> None:
        """Mirror of ``audit_commit``."""
        ph = self.get_phase()
        require(sender == self.auditor, "not the auditor")
        require(Phase.PROPOSE <= ph <= Phase.COMMIT, "wrong phase")
        require(self.audit_commit_of.get(self.round, EMPTY) == EMPTY, "already committed")
        require(commitment != EMPTY, "empty commitment")
        self.audit_commit_of[self.round] = commitment

    def audit_reveal(self, sender: str, bad: bool, salt: bytes) -> None:
        """Mirror of ``audit_reveal``."""
        ph, r = self.get_phase(), self.round
        require(sender == self.auditor, "not the auditor")
        require(ph in (Phase.REVEAL, Phase.SETTLE), "wrong phase")
        c = self.audit_commit_of.get(r, EMPTY)
        require(c != EMPTY, "no audit commitment")
        require(compute_audit_commitment(r, bad, salt, self.chain_id, self.address) == c,
                "bad reveal")
        self.audit_commit_of[r] = EMPTY
        self.audit_bad[r] = bad

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
        """Mirror of ``settle`` (same order of slashes and rewards; see its NatSpec)."""
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
            votes = [(a, self.vote_of.get((r, a), Vote.NONE)) for a in self.voters]
            voter_stake = sum(self.stake_of[a] for a, _ in votes)
            out.accept_stake = sum(self.stake_of[a] for a, v in votes if v == Vote.ACCEPT)
            out.reject_stake = sum(self.stake_of[a] for a, v in votes if v == Vote.REJECT)
            for a, v in votes:
                if v == Vote.NONE:
                    self._slash(out, a, p.sigma_v, SlashReason.WITHHELD)
            acc, rej = out.accept_stake, out.reject_stake
            quorum = (acc + rej) * BPS >= p.vote_quorum * voter_stake
            if self.audit_bad.get(r, False):
                out.outcome = Outcome.AUDITED
            elif quorum and acc > rej:
                out.outcome = Outcome.ACCEPTED
            elif quorum and rej > acc:
                out.outcome = Outcome.REJECTED
            else:
                out.outcome = Outcome.UNDECIDED
            if out.outcome == Outcome.ACCEPTED:
                out.accepted = True
                self.model_hash = ev.result
            if out.outcome in (Outcome.ACCEPTED, Outcome.AUDITED):
                paid = out.outcome == Outcome.ACCEPTED  # audited: faults only, nobody paid
                for a in ev.rejected:
                    self._slash(out, a, p.sigma_c, SlashReason.CLIENT)
                for a in ev.servers:
                    self._slash(out, a, p.sigma_s, SlashReason.SERVER)
                for a in self.proposers:
                    if a in ev.accepted:
                        if paid:
                            rewarded.append(a)
                    elif a not in ev.rejected:
                        self._slash(out, a, p.sigma_p, SlashReason.PROPOSER)
                for a in self.committee:
                    if a in ev.servers:
                        continue
                    if self.attestation_of.get((r, a)) == h:
                        if paid:
                            rewarded.append(a)
                    else:
                        self._slash(out, a, p.sigma_m, SlashReason.MEMBER)
                if paid:
                    rewarded += [a for a, v in votes if v == Vote.ACCEPT]
            if out.outcome == Outcome.REJECTED:
                rewarded += [a for a, v in votes if v == Vote.REJECT]
            elif out.outcome == Outcome.AUDITED:
                for a, v in votes:
                    if v == Vote.REJECT:
                        rewarded.append(a)
                    elif v == Vote.ACCEPT:
                        self._slash(out, a, p.sigma_v, SlashReason.AUDIT)
        if out.outcome not in (Outcome.ACCEPTED, Outcome.AUDITED):
            for a in self.committee:
                if (r, a) not in self.attestation_of:
                    self._slash(out, a, p.sigma_m, SlashReason.MEMBER)
            for a in self.proposers:
                if (r, a) not in self.bundle_of or not self._responded(a):
                    self._slash(out, a, p.sigma_p, SlashReason.PROPOSER)
        shares = compute_rewards(budget, [self.stake_of[a] for a in rewarded])
        for a, amt in zip(rewarded, shares, strict=True):
            self.stake_of[a] += amt
            out.rewards[a] = amt
        out.paid = sum(shares)
        self.pool -= out.paid
        self.total_stake += out.paid
        self.total_rewarded += out.paid
        for a in (self.beacon_committers.get(r, []) + self.committee + self.proposers
                  + self.voters):
            self._sync(a)
        out.model = self.model_hash
        self._start_next_round()
        return out

    def _start_next_round(self) -> None:
        r = self.round
        self.rounds_left -= 1
        if self.rounds_left == 0:
            self.leftover = self.pool
        self.round = r + 1
        self.round_start = self.block
        self.prev_seed = self.seed
        self.seed_start = self.seed = compute_seed_start(self.seed, r + 1)
        self.beacon_mix = 0
        self.roles_drawn = False
        self.committee, self.proposers, self.voters = [], [], []


def checksum(address: str) -> str:
    """The EIP-55 form of an address, as both backends return them."""
    return str(to_checksum_address(address))
