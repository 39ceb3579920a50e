# pragma version 0.4.3
"""
@title Phalanx task ledger
@notice One federated-learning task: stake, beacon, stake-weighted roles, bundle commitments,
        committee attestations with MPC evidence, voter commit-reveal and reward-and-slash
        (protocol.md section 4, after FLock).
@dev    Amounts are wei of the native coin; fractions are basis points (1/10_000); deadlines
        are block counts. phalanx/chain/model.py mirrors every integer computation bit for bit.
        Beacon bound: the seed is keccak256(start, XOR of keccak256(secret, sender) over the
        reveals), independent of reveal order. Its only remaining bias is withholding: a
        coalition holding w of the round's (at most k) beacon commitments can choose among at
        most 2^w seeds, and every withheld reveal costs sigma_b of the withholder's stake; a
        single last revealer chooses between 2 seeds for sigma_b.
@custom:kill There is no owner and no kill switch: the deployer only creates the task (and may
             audit rounds, see audit_commit).
"""

# ---------------------------------------------------------------------------------------------
# Compile-time maxima (Vyper needs static bounds); each task declares its own limits in
# TaskParams, checked against these at creation (docs/ledger.md explains each)
MAX_PEERS: constant(uint256) = 16384       # sortition tree slots (a power of two)
TREE_LOG: constant(uint256) = 14           # log2(MAX_PEERS)
MAX_COMMITTEE: constant(uint256) = 128
MAX_PROPOSERS: constant(uint256) = 128
MAX_VOTERS: constant(uint256) = 128
MAX_ROLES: constant(uint256) = 256
MAX_ENDPOINT: constant(uint256) = 128
BPS: constant(uint256) = 10000

# Sortition domain (keccak256(abi_encode(seed, DOMAIN_DRAW, j)))
DOMAIN_DRAW: constant(uint256) = 4

# Roles
ROLE_NONE: constant(uint8) = 0
ROLE_COMMITTEE: constant(uint8) = 1
ROLE_PROPOSER: constant(uint8) = 2
ROLE_VOTER: constant(uint8) = 3

# Votes
VOTE_NONE: constant(uint8) = 0
VOTE_ACCEPT: constant(uint8) = 1
VOTE_REJECT: constant(uint8) = 2

# Slash reasons (Slashed.reason)
SLASH_BEACON: constant(uint8) = 1    # beacon commitment not revealed (sigma_b)
SLASH_CLIENT: constant(uint8) = 2    # rejected client (sigma_c)
SLASH_SERVER: constant(uint8) = 3    # identified server (sigma_s)
SLASH_VOTER: constant(uint8) = 4     # unused since issue 11 (losing a vote is not slashed); kept so codes stay stable
SLASH_PROPOSER: constant(uint8) = 5  # proposer missed its delivery (sigma_p)
SLASH_MEMBER: constant(uint8) = 6    # member silent, or attested another result (sigma_m)
SLASH_WITHHELD: constant(uint8) = 7  # voter did not reveal (sigma_v)
SLASH_AUDIT: constant(uint8) = 8     # voter accepted an audited known-bad candidate (sigma_v)

# Round phases (get_phase)
PHASE_REGISTRATION: constant(uint8) = 0
PHASE_BEACON: constant(uint8) = 1
PHASE_PROPOSE: constant(uint8) = 2
PHASE_ATTEST: constant(uint8) = 3
PHASE_COMMIT: constant(uint8) = 4
PHASE_REVEAL: constant(uint8) = 5
PHASE_SETTLE: constant(uint8) = 6
PHASE_FINISHED: constant(uint8) = 7

# Vote outcomes (RoundSettled.outcome)
OUTCOME_VOID: constant(uint8) = 0       # no standing result
OUTCOME_ACCEPTED: constant(uint8) = 1
OUTCOME_REJECTED: constant(uint8) = 2
OUTCOME_UNDECIDED: constant(uint8) = 3  # no quorum of revealed voter stake, or a tie
OUTCOME_AUDITED: constant(uint8) = 4    # the auditor revealed a known-bad candidate


struct TaskParams:
    min_stake: uint256
    committee_size: uint256
    threshold: uint256
    n_proposers: uint256
    n_voters: uint256
    rounds: uint256
    sigma_b: uint256
    sigma_c: uint256
    sigma_s: uint256
    sigma_v: uint256
    sigma_p: uint256
    epsilon: uint256
    registration_blocks: uint256
    beacon_blocks: uint256
    propose_blocks: uint256
    attest_blocks: uint256
    commit_blocks: uint256
    reveal_blocks: uint256
    unbond_delay: uint256
    sigma_m: uint256
    vote_quorum: uint256
    max_peers: uint256
    response_blocks: uint256
    weight_cap: uint256


event Registered:
    peer: indexed(address)
    stake: uint256
    x25519: bytes32
    endpoint: String[MAX_ENDPOINT]
    since_round: uint256

event Funded:
    sender: indexed(address)
    amount: uint256

event Reclaimed:
    funder: indexed(address)
    amount: uint256

event UnbondRequested:
    peer: indexed(address)
    last_round: uint256
    withdraw_block: uint256

event Withdrawn:
    peer: indexed(address)
    amount: uint256

event BeaconCommitted:
    peer: indexed(address)
    round: indexed(uint256)
    commitment: bytes32

event BeaconRevealed:
    peer: indexed(address)
    round: indexed(uint256)
    secret: bytes32
    seed: bytes32

event RolesDrawn:
    round: indexed(uint256)
    seed: bytes32
    committee: DynArray[address, MAX_COMMITTEE]
    proposers: DynArray[address, MAX_PROPOSERS]
    voters: DynArray[address, MAX_VOTERS]

event BundlePosted:
    peer: indexed(address)
    round: indexed(uint256)
    root: bytes32

event ResponsePosted:
    peer: indexed(address)
    round: indexed(uint256)
    root: bytes32

event Attested:
    member: indexed(address)
    round: indexed(uint256)
    attestation: bytes32
    result: bytes32
    accepted: DynArray[address, MAX_PROPOSERS]
    rejected: DynArray[address, MAX_PROPOSERS]
    reasons: DynArray[uint8, MAX_PROPOSERS]
    servers: DynArray[address, MAX_COMMITTEE]

event ResultStands:
    round: indexed(uint256)
    attestation: bytes32
    result: bytes32

event VoteCommitted:
    voter: indexed(address)
    round: indexed(uint256)
    commitment: bytes32

event VoteRevealed:
    voter: indexed(address)
    round: indexed(uint256)
    accept: bool

event AuditRevealed:
    round: indexed(uint256)
    bad: bool

event Slashed:
    peer: indexed(address)
    round: indexed(uint256)
    reason: uint8
    amount: uint256

event Rewarded:
    peer: indexed(address)
    round: indexed(uint256)
    amount: uint256

event RoundSettled:
    round: indexed(uint256)
    stands: bool
    accepted: bool
    model: bytes32
    accept_stake: uint256
    reject_stake: uint256
    budget: uint256
    paid: uint256
    outcome: uint8


# ---------------------------------------------------------------------------------------------
# Task
params: public(TaskParams)
pool: public(uint256)
rounds_left: public(uint256)
model_hash: public(bytes32)
total_stake: public(uint256)
total_funded: public(uint256)
total_rewarded: public(uint256)
total_slashed: public(uint256)
auditor: public(address)
funded_by: public(HashMap[address, uint256])
leftover: public(uint256)      # the pool when the last round settled, shared by the funders
reclaimed: public(uint256)

# Peers: fixed slots (1-based) in a Fenwick tree of eligible stake; a removal is a zero weight,
# never a reordering, and a freed slot is reused only by a later registration
peer_count: public(uint256)
slot_of: public(HashMap[address, uint256])       # 0 = not registered
peer_at: public(HashMap[uint256, address])
slots_used: public(uint256)
free_slots: HashMap[uint256, uint256]
n_free: uint256
tree: HashMap[uint256, uint256]
weight_of: public(HashMap[uint256, uint256])     # weight of a slot in the tree
n_eligible: public(uint256)                      # slots with weight > 0
stake_of: public(HashMap[address, uint256])
since_round: public(HashMap[address, uint256])
unbonding: public(HashMap[address, bool])
unbond_round: public(HashMap[address, uint256])  # when unbonding: first round not eligible
withdraw_block: public(HashMap[address, uint256])
duty_round: public(HashMap[address, uint256])    # withdrawal waits until round >= this
x25519_of: public(HashMap[address, bytes32])
endpoint_of: public(HashMap[address, String[MAX_ENDPOINT]])

# Current round
round: public(uint256)
round_start: public(uint256)
seed_start: public(bytes32)    # keccak256(prev_seed, round)
beacon_mix: public(bytes32)    # XOR of keccak256(secret, sender) over this round's reveals
seed: public(bytes32)          # keccak256(seed_start, beacon_mix) (seed_start before a reveal)
prev_seed: public(bytes32)     # final seed of the previous round (genesis seed for round 0)
roles_drawn: public(bool)
committee: public(DynArray[address, MAX_COMMITTEE])
proposers: public(DynArray[address, MAX_PROPOSERS])
voters: public(DynArray[address, MAX_VOTERS])

# Per round (keyed by round index, never cleared)
beacon_commit: public(HashMap[uint256, HashMap[address, bytes32]])
beacon_revealed: public(HashMap[uint256, HashMap[address, bool]])
beacon_committers: HashMap[uint256, DynArray[address, MAX_ROLES]]
role_of: public(HashMap[uint256, HashMap[address, uint8]])
bundle_of: public(HashMap[uint256, HashMap[address, bytes32]])
response_of: public(HashMap[uint256, HashMap[address, bytes32]])  # part-2 roots
attestation_of: public(HashMap[uint256, HashMap[address, bytes32]])
attestation_count: public(HashMap[bytes32, uint256])
winning: public(HashMap[uint256, bytes32])
vote_commit: public(HashMap[uint256, HashMap[address, bytes32]])
vote_of: public(HashMap[uint256, HashMap[address, uint8]])
audit_commit_of: public(HashMap[uint256, bytes32])
audit_bad: public(HashMap[uint256, bool])

# Evidence of each distinct attestation (keyed by its hash, which includes the round)
ev_result: public(HashMap[bytes32, bytes32])
ev_accepted: HashMap[bytes32, DynArray[address, MAX_PROPOSERS]]
ev_rejected: HashMap[bytes32, DynArray[address, MAX_PROPOSERS]]
ev_reasons: HashMap[bytes32, DynArray[uint8, MAX_PROPOSERS]]
ev_servers: HashMap[bytes32, DynArray[address, MAX_COMMITTEE]]


@deploy
@payable
def __init__(p: TaskParams, genesis_seed: bytes32, initial_model: bytes32):
    """
    @notice Create the task; the value sent is the reward pool; the deployer is its funder
            and the task's auditor.
    @param p Task parameters (units: wei, basis points, blocks); the limits (committee_size,
             n_proposers, n_voters, max_peers) are checked against the compile-time maxima.
    @param genesis_seed Seed that round 0's beacon starts from.
    @param initial_model Hash of the initial global model.
    """
    assert p.min_stake >= BPS  # dev: min_stake below BPS=10000 (slashes would round to 0)
    assert p.committee_size >= 3 * p.threshold + 1  # dev: committee needs m >= 3t+1
    assert p.committee_size <= MAX_COMMITTEE  # dev: committee_size above MAX_COMMITTEE=128
    assert p.n_proposers >= 1  # dev: n_proposers is zero
    assert p.n_proposers <= MAX_PROPOSERS  # dev: n_proposers above MAX_PROPOSERS=128
    assert p.n_voters >= 1  # dev: n_voters is zero
    assert p.n_voters <= MAX_VOTERS  # dev: n_voters above MAX_VOTERS=128
    assert p.committee_size + p.n_proposers + p.n_voters <= MAX_ROLES  # dev: seats above MAX_ROLES=256
    assert p.max_peers >= p.committee_size + p.n_proposers + p.n_voters  # dev: max_peers below seats
    assert p.max_peers <= MAX_PEERS  # dev: max_peers above MAX_PEERS=16384
    assert p.rounds > 0  # dev: rounds is zero
    assert p.sigma_b <= BPS and p.sigma_c <= BPS and p.sigma_s <= BPS  # dev: fraction above 1
    assert p.sigma_v <= BPS and p.sigma_p <= BPS and p.epsilon <= BPS  # dev: fraction above 1
    assert p.sigma_m <= BPS and p.vote_quorum <= BPS  # dev: fraction above 1
    assert p.vote_quorum > 0  # dev: vote_quorum is zero
    assert p.beacon_blocks > 0 and p.propose_blocks > 0 and p.attest_blocks > 0  # dev: empty phase
    assert p.commit_blocks > 0 and p.reveal_blocks > 0  # dev: empty phase
    assert p.response_blocks < p.attest_blocks  # dev: response window not inside attest
    assert p.weight_cap == 0 or p.weight_cap >= p.min_stake  # dev: weight_cap below min_stake
    self.params = p
    self.pool = msg.value
    self.total_funded = msg.value
    self.funded_by[msg.sender] = msg.value
    self.auditor = msg.sender
    self.rounds_left = p.rounds
    self.model_hash = initial_model
    self.round_start = block.number + p.registration_blocks
    self.prev_seed = genesis_seed
    s: bytes32 = keccak256(abi_encode(genesis_seed, convert(0, uint256)))
    self.seed_start = s
    self.seed = s
    log Funded(sender=msg.sender, amount=msg.value)


# ---------------------------------------------------------------------------------------------
# Views


@view
@internal
def _phase() -> uint8:
    if self.rounds_left == 0:
        return PHASE_FINISHED
    b: uint256 = block.number
    s: uint256 = self.round_start
    if b < s:
        return PHASE_REGISTRATION
    s += self.params.beacon_blocks
    if b < s:
        return PHASE_BEACON
    s += self.params.propose_blocks
    if b < s:
        return PHASE_PROPOSE
    s += self.params.attest_blocks
    if b < s:
        return PHASE_ATTEST
    s += self.params.commit_blocks
    if b < s:
        return PHASE_COMMIT
    s += self.params.reveal_blocks
    if b < s:
        return PHASE_REVEAL
    return PHASE_SETTLE


@view
@external
def get_phase() -> uint8:
    """
    @notice The phase of the current round at this block.
    @return 0 registration, 1 beacon, 2 propose, 3 attest, 4 commit, 5 reveal, 6 settle, 7 finished.
    """
    return self._phase()


@view
@external
def get_chain_id() -> uint256:
    """
    @notice The chain id the commitments bind (with this contract's address).
    @return chain.id.
    """
    return chain.id


@view
@internal
def _is_eligible(a: address, r: uint256) -> bool:
    if self.since_round[a] > r:
        return False
    if self.unbonding[a] and r >= self.unbond_round[a]:
        return False
    return self.stake_of[a] >= self.params.min_stake


@view
@external
def is_eligible(peer: address, r: uint256) -> bool:
    """
    @notice Whether a registered peer can be drawn in round r with its current stake.
    @param peer The peer.
    @param r The round index.
    @return True when registered before r, not unbonded before r and staked >= min_stake.
    """
    return self.slot_of[peer] != 0 and self._is_eligible(peer, r)


@pure
@internal
def _rand(seed: bytes32, domain: uint256, i: uint256) -> uint256:
    return convert(keccak256(abi_encode(seed, domain, i)), uint256)


@view
@internal
def _find(u: uint256, slots: DynArray[uint256, MAX_ROLES], ws: DynArray[uint256, MAX_ROLES]) -> uint256:
    """The smallest slot whose prefix sum of remaining weight exceeds u (drawn slots removed)."""
    pos: uint256 = 0
    rem: uint256 = u
    step: uint256 = MAX_PEERS // 2
    for _: uint256 in range(TREE_LOG):
        nxt: uint256 = pos + step
        w: uint256 = self.tree[nxt]
        for j: uint256 in range(len(slots), bound=MAX_ROLES):
            s: uint256 = slots[j]
            if s > pos and s <= nxt:
                w -= ws[j]
        if w <= rem:
            pos = nxt
            rem -= w
        step = step // 2
    return pos + 1


@view
@internal
def _sortition(seed: bytes32) -> DynArray[address, MAX_ROLES]:
    """
    k stake-weighted draws without replacement from the Fenwick tree of eligible stake:
    draw j takes u_j = keccak256(abi_encode(seed, 4, j)) % (remaining stake) and the slot it
    falls in (slot order), O(log n) storage reads and O(j log n) memory work each.
    """
    k: uint256 = self.params.committee_size + self.params.n_proposers + self.params.n_voters
    out: DynArray[address, MAX_ROLES] = []
    if self.n_eligible < k:
        return out
    total: uint256 = self.tree[MAX_PEERS]
    slots: DynArray[uint256, MAX_ROLES] = []
    ws: DynArray[uint256, MAX_ROLES] = []
    for j: uint256 in range(k, bound=MAX_ROLES):
        u: uint256 = self._rand(seed, DOMAIN_DRAW, j) % total
        s: uint256 = self._find(u, slots, ws)
        w: uint256 = self.weight_of[s]
        slots.append(s)
        ws.append(w)
        total -= w
        out.append(self.peer_at[s])
    return out


@view
@external
def compute_sortition(seed: bytes32, r: uint256) -> DynArray[address, MAX_ROLES]:
    """
    @notice The seats drawn from `seed` over the current candidate set (the tree of eligible
            stake, frozen from the round's start until its roles are drawn): the first m are
            the committee, then the proposers, then the voters (disjoint).
    @dev O(k log n) storage reads; empty when fewer than k peers are eligible. r is kept for
         the interface; the candidate set is the current one.
    @param seed The round seed.
    @param r The round index (informational).
    @return The seat holders in order.
    """
    return self._sortition(seed)


@view
@external
def get_roles() -> (DynArray[address, MAX_COMMITTEE], DynArray[address, MAX_PROPOSERS], DynArray[address, MAX_VOTERS]):
    """
    @notice The committee, proposers and voters of the current round (empty until drawn).
    @return committee, proposers, voters.
    """
    return self.committee, self.proposers, self.voters


@view
@external
def eligible_stake() -> uint256:
    """
    @notice Total weight of the sortition tree (stake of the current candidates).
    @return The sum.
    """
    return self.tree[MAX_PEERS]


@view
@external
def get_evidence(attestation: bytes32) -> (bytes32, DynArray[address, MAX_PROPOSERS], DynArray[address, MAX_PROPOSERS], DynArray[uint8, MAX_PROPOSERS], DynArray[address, MAX_COMMITTEE]):
    """
    @notice The evidence behind an attestation hash.
    @param attestation keccak256(abi_encode(round, result, accepted, rejected, reasons, servers)).
    @return result, accepted clients, rejected clients, their reason codes, identified servers.
    """
    return self.ev_result[attestation], self.ev_accepted[attestation], self.ev_rejected[attestation], self.ev_reasons[attestation], self.ev_servers[attestation]


@view
@external
def get_beacon_committers(r: uint256) -> DynArray[address, MAX_ROLES]:
    """
    @notice Peers that committed a beacon secret for round r.
    @param r The round index.
    @return The committers in commit order.
    """
    return self.beacon_committers[r]


@view
@external
def can_commit_beacon(peer: address) -> bool:
    """
    @notice Whether `peer` may commit a beacon secret now: any registered, bonded peer during
            registration (first k), else a role holder of the current round once roles are drawn.
    @param peer The peer.
    @return True when commit_beacon would accept a fresh commitment from it.
    """
    if self.rounds_left == 0 or self.slot_of[peer] == 0 or self.unbonding[peer]:
        return False
    ph: uint8 = self._phase()
    k: uint256 = self.params.committee_size + self.params.n_proposers + self.params.n_voters
    if ph == PHASE_REGISTRATION:
        return self.beacon_commit[self.round][peer] == empty(bytes32) and len(self.beacon_committers[self.round]) < k
    if ph == PHASE_BEACON or not self.roles_drawn:
        return False
    return self.role_of[self.round][peer] != ROLE_NONE and self.beacon_commit[self.round + 1][peer] == empty(bytes32)


# ---------------------------------------------------------------------------------------------
# Sortition tree


@internal
def _set_weight(slot: uint256, w: uint256):
    old: uint256 = self.weight_of[slot]
    if old == w:
        return
    if old == 0:
        self.n_eligible += 1
    elif w == 0:
        self.n_eligible -= 1
    self.weight_of[slot] = w
    i: uint256 = slot
    for _: uint256 in range(TREE_LOG + 1):
        if i > MAX_PEERS:
            break
        if w > old:
            self.tree[i] += w - old
        else:
            self.tree[i] -= old - w
        i += i & (~i + 1)


@internal
def _sync(a: address):
    """Put a's weight for the coming draws into the tree: its capped stake while bonded and staked."""
    slot: uint256 = self.slot_of[a]
    if slot == 0:
        return
    w: uint256 = 0
    if not self.unbonding[a] and self.stake_of[a] >= self.params.min_stake:
        w = self._weight(self.stake_of[a])
    self._set_weight(slot, w)


@view
@internal
def _weight(stake: uint256) -> uint256:
    """A bonded, staked peer's sortition weight: min(stake, weight_cap); the stake if no cap."""
    cap: uint256 = self.params.weight_cap
    if cap > 0 and stake > cap:
        return cap
    return stake


@internal
def _freeze_for_change():
    """Stake changes outside settle: refused while the seed forms, else after the draw."""
    ph: uint8 = self._phase()
    assert ph != PHASE_BEACON  # dev: beacon open
    if ph >= PHASE_PROPOSE and ph <= PHASE_SETTLE:
        self._draw_roles()


# ---------------------------------------------------------------------------------------------
# Stake


@payable
@external
@nonreentrant
def register(x25519: bytes32, endpoint: String[MAX_ENDPOINT]):
    """
    @notice Register the caller with the value sent as stake, its X25519 key and endpoint.
    @dev Eligible from the next round (round 0 when registered before it starts). Refused in the
         beacon phase; later in the round it first fixes the round's roles, so a registration
         never changes a draw whose seed is known.
    @param x25519 The peer's X25519 public key for sealed bundles.
    @param endpoint Where the peer listens (e.g. host:port).
    """
    assert self.rounds_left > 0  # dev: task finished
    assert self.slot_of[msg.sender] == 0  # dev: already registered
    assert msg.value >= self.params.min_stake  # dev: stake below minimum
    assert self.peer_count < self.params.max_peers  # dev: too many peers
    self._freeze_for_change()
    since: uint256 = self.round
    if block.number >= self.round_start:
        since += 1
    slot: uint256 = 0
    if self.n_free > 0:
        slot = self.free_slots[self.n_free]
        self.n_free -= 1
    else:
        slot = self.slots_used + 1
        self.slots_used = slot
    self.slot_of[msg.sender] = slot
    self.peer_at[slot] = msg.sender
    self.peer_count += 1
    self.stake_of[msg.sender] = msg.value
    self.since_round[msg.sender] = since
    self.unbonding[msg.sender] = False
    self.unbond_round[msg.sender] = 0
    self.duty_round[msg.sender] = 0
    self.x25519_of[msg.sender] = x25519
    self.endpoint_of[msg.sender] = endpoint
    self.total_stake += msg.value
    self._set_weight(slot, self._weight(msg.value))
    log Registered(peer=msg.sender, stake=msg.value, x25519=x25519, endpoint=endpoint, since_round=since)


@payable
@external
def fund():
    """
    @notice Add the value sent to the reward pool (anyone may, until the task ends).
    """
    assert self.rounds_left > 0  # dev: task finished
    assert msg.value > 0  # dev: nothing sent
    self.pool += msg.value
    self.total_funded += msg.value
    self.funded_by[msg.sender] += msg.value
    log Funded(sender=msg.sender, amount=msg.value)


@external
@nonreentrant
def reclaim() -> uint256:
    """
    @notice Once the task is finished, pay the caller its share of the leftover pool:
            leftover * funded_by[caller] // total_funded.
    @dev Checks-effects-interactions and a re-entrancy lock; the truncation dust stays.
    @return The amount paid.
    """
    assert self.rounds_left == 0  # dev: task not finished
    f: uint256 = self.funded_by[msg.sender]
    assert f > 0  # dev: nothing to reclaim
    amount: uint256 = self.leftover * f // self.total_funded
    self.funded_by[msg.sender] = 0
    self.pool -= amount
    self.reclaimed += amount
    log Reclaimed(funder=msg.sender, amount=amount)
    raw_call(msg.sender, b"", value=amount)
    return amount


@external
def unbond():
    """
    @notice Stop being drawn; withdraw after the unbonding delay and the pending duties.
    @dev Refused in the beacon phase; in registration the peer leaves round 0's candidates at
         once, later it stays in the current round's (already drawn) roles and leaves the tree.
    """
    assert self.slot_of[msg.sender] != 0  # dev: not registered
    assert not self.unbonding[msg.sender]  # dev: already unbonding
    self._freeze_for_change()
    first_out: uint256 = self.round
    if block.number >= self.round_start:
        first_out += 1
    self.unbonding[msg.sender] = True
    self.unbond_round[msg.sender] = first_out
    self.duty_round[msg.sender] = max(self.duty_round[msg.sender], self.round + 1)
    wb: uint256 = block.number + self.params.unbond_delay
    self.withdraw_block[msg.sender] = wb
    self._sync(msg.sender)
    log UnbondRequested(peer=msg.sender, last_round=first_out, withdraw_block=wb)


@external
@nonreentrant
def withdraw():
    """
    @notice Pay the caller's whole remaining stake and deregister it.
    @dev Checks-effects-interactions and a re-entrancy lock; waits for the delay and for every
         round in which the peer had a duty (role or beacon reveal) to settle. The peer's slot
         already weighs 0, so no draw changes; the slot is freed for a later registration.
    """
    slot: uint256 = self.slot_of[msg.sender]
    assert slot != 0  # dev: not registered
    assert self.unbonding[msg.sender]  # dev: not unbonding
    assert block.number >= self.withdraw_block[msg.sender]  # dev: unbonding delay
    assert self.rounds_left == 0 or self.round >= self.duty_round[msg.sender]  # dev: duty pending
    amount: uint256 = self.stake_of[msg.sender]
    self.slot_of[msg.sender] = 0
    self.peer_at[slot] = empty(address)
    self.n_free += 1
    self.free_slots[self.n_free] = slot
    self.peer_count -= 1
    self.stake_of[msg.sender] = 0
    self.unbonding[msg.sender] = False
    self.total_stake -= amount
    log Withdrawn(peer=msg.sender, amount=amount)
    raw_call(msg.sender, b"", value=amount)


# ---------------------------------------------------------------------------------------------
# Beacon


@external
def commit_beacon(commitment: bytes32):
    """
    @notice Commit keccak256(abi_encode(chain.id, this, secret, sender, target_round)).
    @dev During registration any bonded peer commits for round 0 (the first k); during round r
         (after the draw) the role holders of r commit for r+1. At most k contributors per
         round. Not revealing in the target round's beacon phase is slashed sigma_b.
    @param commitment The commitment.
    """
    assert self.rounds_left > 0  # dev: task finished
    assert self.slot_of[msg.sender] != 0  # dev: not registered
    assert not self.unbonding[msg.sender]  # dev: unbonding
    assert commitment != empty(bytes32)  # dev: empty commitment
    ph: uint8 = self._phase()
    target: uint256 = self.round
    if ph == PHASE_REGISTRATION:
        k: uint256 = self.params.committee_size + self.params.n_proposers + self.params.n_voters
        assert len(self.beacon_committers[target]) < k  # dev: beacon full
    else:
        assert ph != PHASE_BEACON  # dev: roles not drawn
        self._draw_roles()
        assert self.role_of[target][msg.sender] != ROLE_NONE  # dev: no role this round
        target += 1
    assert self.beacon_commit[target][msg.sender] == empty(bytes32)  # dev: already committed
    self.beacon_commit[target][msg.sender] = commitment
    self.beacon_committers[target].append(msg.sender)
    self.duty_round[msg.sender] = max(self.duty_round[msg.sender], target + 1)
    log BeaconCommitted(peer=msg.sender, round=target, commitment=commitment)


@external
def reveal_beacon(secret: bytes32):
    """
    @notice Reveal the secret committed for the current round; XORs keccak256(secret, sender)
            into the beacon mix, so the seed does not depend on the order of reveals.
    @param secret The committed secret.
    """
    assert self._phase() == PHASE_BEACON  # dev: not beacon phase
    r: uint256 = self.round
    c: bytes32 = self.beacon_commit[r][msg.sender]
    assert c != empty(bytes32)  # dev: no commitment
    assert not self.beacon_revealed[r][msg.sender]  # dev: already revealed
    assert keccak256(abi_encode(chain.id, self, secret, msg.sender, r)) == c  # dev: bad reveal
    self.beacon_revealed[r][msg.sender] = True
    mix: uint256 = convert(self.beacon_mix, uint256) ^ convert(keccak256(abi_encode(secret, msg.sender)), uint256)
    self.beacon_mix = convert(mix, bytes32)
    s: bytes32 = keccak256(abi_encode(self.seed_start, convert(mix, bytes32)))
    self.seed = s
    log BeaconRevealed(peer=msg.sender, round=r, secret=secret, seed=s)


@internal
def _draw_roles():
    if self.roles_drawn:
        return
    r: uint256 = self.round
    seats: DynArray[address, MAX_ROLES] = self._sortition(self.seed)
    m: uint256 = self.params.committee_size
    np: uint256 = self.params.n_proposers
    c: DynArray[address, MAX_COMMITTEE] = []
    p: DynArray[address, MAX_PROPOSERS] = []
    v: DynArray[address, MAX_VOTERS] = []
    for i: uint256 in range(len(seats), bound=MAX_ROLES):
        a: address = seats[i]
        if i < m:
            c.append(a)
            self.role_of[r][a] = ROLE_COMMITTEE
        elif i < m + np:
            p.append(a)
            self.role_of[r][a] = ROLE_PROPOSER
        else:
            v.append(a)
            self.role_of[r][a] = ROLE_VOTER
    self.committee = c
    self.proposers = p
    self.voters = v
    self.roles_drawn = True
    log RolesDrawn(round=r, seed=self.seed, committee=c, proposers=p, voters=v)


@external
def close_beacon():
    """
    @notice Fix the round seed and store the roles (anyone, once the beacon phase is over).
    @dev Every role-checked call does this lazily; an explicit call lets a peer pay for it.
    """
    ph: uint8 = self._phase()
    assert ph >= PHASE_PROPOSE and ph <= PHASE_SETTLE  # dev: beacon still open
    assert not self.roles_drawn  # dev: roles already drawn
    self._draw_roles()


@internal
def _in_phase(ph: uint8):
    assert self._phase() == ph  # dev: wrong phase
    self._draw_roles()


# ---------------------------------------------------------------------------------------------
# Proposers and committee


@external
def post_bundle(root: bytes32):
    """
    @notice A proposer commits the hash (or Merkle root) of its m sealed bundles.
    @param root The commitment.
    """
    self._in_phase(PHASE_PROPOSE)
    r: uint256 = self.round
    assert self.role_of[r][msg.sender] == ROLE_PROPOSER  # dev: not a proposer
    assert self.bundle_of[r][msg.sender] == empty(bytes32)  # dev: already posted
    assert root != empty(bytes32)  # dev: empty root
    self.bundle_of[r][msg.sender] = root
    log BundlePosted(peer=msg.sender, round=r, root=root)


@view
@internal
def _response_end() -> uint256:
    """First block of the attest phase after the part-2 response window."""
    return self.round_start + self.params.beacon_blocks + self.params.propose_blocks + self.params.response_blocks


@external
def post_response(root: bytes32):
    """
    @notice A proposer that posted a bundle commits the root of its part-2 responses, in the
            first response_blocks blocks of the attest phase (protocol.md §3.3). With a
            response window, a proposer without a response counts as missing the deadline.
    @param root The commitment.
    """
    self._in_phase(PHASE_ATTEST)
    assert block.number < self._response_end()  # dev: response window closed
    r: uint256 = self.round
    assert self.role_of[r][msg.sender] == ROLE_PROPOSER  # dev: not a proposer
    assert self.bundle_of[r][msg.sender] != empty(bytes32)  # dev: no bundle
    assert self.response_of[r][msg.sender] == empty(bytes32)  # dev: already responded
    assert root != empty(bytes32)  # dev: empty root
    self.response_of[r][msg.sender] = root
    log ResponsePosted(peer=msg.sender, round=r, root=root)


@external
def attest(result: bytes32, accepted: DynArray[address, MAX_PROPOSERS], rejected: DynArray[address, MAX_PROPOSERS], reasons: DynArray[uint8, MAX_PROPOSERS], servers: DynArray[address, MAX_COMMITTEE]):
    """
    @notice A committee member attests the result hash with the MPC evidence; the result
            stands once m - t members posted the same attestation. Lists are in canonical
            (strictly increasing address) order, so equal evidence is byte-identical.
    @param result Hash of the aggregated candidate model.
    @param accepted Proposers whose inputs were delivered and counted (only these are paid).
    @param rejected Proposers whose inputs failed a check (disjoint from accepted).
    @param reasons One reason code per rejected proposer (phalanx.errors.Reject order).
    @param servers Committee members identified as cheating.
    """
    self._in_phase(PHASE_ATTEST)
    assert block.number >= self._response_end()  # dev: response window open
    r: uint256 = self.round
    assert self.role_of[r][msg.sender] == ROLE_COMMITTEE  # dev: not in committee
    assert self.attestation_of[r][msg.sender] == empty(bytes32)  # dev: already attested
    assert result != empty(bytes32)  # dev: empty result
    assert len(reasons) == len(rejected)  # dev: reasons length
    p_resp: uint256 = self.params.response_blocks
    prev: uint256 = 0
    for c: address in accepted:
        assert convert(c, uint256) > prev  # dev: accepted not sorted
        prev = convert(c, uint256)
        assert self.bundle_of[r][c] != empty(bytes32)  # dev: accepted without bundle
        assert p_resp == 0 or self.response_of[r][c] != empty(bytes32)  # dev: accepted without response
    prev = 0
    for c: address in rejected:
        assert convert(c, uint256) > prev  # dev: rejected not sorted
        prev = convert(c, uint256)
        assert self.bundle_of[r][c] != empty(bytes32)  # dev: rejected without bundle
    # disjointness: both sorted, one merge pass
    i: uint256 = 0
    for c: address in rejected:
        for _: uint256 in range(MAX_PROPOSERS):
            if i >= len(accepted) or convert(accepted[i], uint256) >= convert(c, uint256):
                break
            i += 1
        assert i >= len(accepted) or accepted[i] != c  # dev: accepted and rejected
    prev = 0
    for s: address in servers:
        assert convert(s, uint256) > prev  # dev: servers not sorted
        prev = convert(s, uint256)
        assert self.role_of[r][s] == ROLE_COMMITTEE  # dev: server not in committee
    h: bytes32 = keccak256(abi_encode(r, result, accepted, rejected, reasons, servers))
    self.attestation_of[r][msg.sender] = h
    n: uint256 = self.attestation_count[h] + 1
    self.attestation_count[h] = n
    if n == 1:
        self.ev_result[h] = result
        self.ev_accepted[h] = accepted
        self.ev_rejected[h] = rejected
        self.ev_reasons[h] = reasons
        self.ev_servers[h] = servers
    q: uint256 = self.params.committee_size - self.params.threshold
    log Attested(member=msg.sender, round=r, attestation=h, result=result, accepted=accepted, rejected=rejected, reasons=reasons, servers=servers)
    if n == q and self.winning[r] == empty(bytes32):
        self.winning[r] = h
        log ResultStands(round=r, attestation=h, result=result)


# ---------------------------------------------------------------------------------------------
# Voters and the auditor


@external
def commit_vote(commitment: bytes32):
    """
    @notice A voter commits keccak256(abi_encode(chain.id, this, round, accept, salt, sender)).
    @dev A drawn voter that does not reveal (committed or not) is slashed sigma_v.
    @param commitment The commitment.
    """
    self._in_phase(PHASE_COMMIT)
    r: uint256 = self.round
    assert self.role_of[r][msg.sender] == ROLE_VOTER  # dev: not a voter
    assert self.winning[r] != empty(bytes32)  # dev: no standing result
    assert self.vote_commit[r][msg.sender] == empty(bytes32)  # dev: already committed
    assert commitment != empty(bytes32)  # dev: empty commitment
    self.vote_commit[r][msg.sender] = commitment
    log VoteCommitted(voter=msg.sender, round=r, commitment=commitment)


@external
def reveal_vote(accept: bool, salt: bytes32):
    """
    @notice A voter reveals its committed vote; at most once.
    @param accept True to accept the candidate.
    @param salt The salt of the commitment.
    """
    self._in_phase(PHASE_REVEAL)
    r: uint256 = self.round
    c: bytes32 = self.vote_commit[r][msg.sender]
    assert c != empty(bytes32)  # dev: no vote commitment
    assert self.vote_of[r][msg.sender] == VOTE_NONE  # dev: already revealed
    assert keccak256(abi_encode(chain.id, self, r, accept, salt, msg.sender)) == c  # dev: bad reveal
    v: uint8 = VOTE_REJECT
    if accept:
        v = VOTE_ACCEPT
    self.vote_of[r][msg.sender] = v
    log VoteRevealed(voter=msg.sender, round=r, accept=accept)


@external
def audit_commit(commitment: bytes32):
    """
    @notice The auditor commits keccak256(abi_encode(chain.id, this, round, bad, salt)) before
            the votes close; committing every round hides which rounds are audits.
    @dev An audit round's candidate is one the auditor knows to be bad (e.g. it injected a
         check-passing poisoned input); revealed bad after the votes, it overrides the vote:
         accepters are slashed sigma_v, rejecters paid, nothing else moves.
    @param commitment The commitment.
    """
    ph: uint8 = self._phase()
    assert msg.sender == self.auditor  # dev: not the auditor
    assert ph >= PHASE_PROPOSE and ph <= PHASE_COMMIT  # dev: wrong phase
    r: uint256 = self.round
    assert self.audit_commit_of[r] == empty(bytes32)  # dev: already committed
    assert commitment != empty(bytes32)  # dev: empty commitment
    self.audit_commit_of[r] = commitment


@external
def audit_reveal(bad: bool, salt: bytes32):
    """
    @notice The auditor opens its commitment after the votes are committed.
    @param bad True when this round's candidate was a known-bad audit candidate.
    @param salt The salt of the commitment.
    """
    ph: uint8 = self._phase()
    assert msg.sender == self.auditor  # dev: not the auditor
    assert ph == PHASE_REVEAL or ph == PHASE_SETTLE  # dev: wrong phase
    r: uint256 = self.round
    c: bytes32 = self.audit_commit_of[r]
    assert c != empty(bytes32)  # dev: no audit commitment
    assert keccak256(abi_encode(chain.id, self, r, bad, salt)) == c  # dev: bad reveal
    self.audit_commit_of[r] = empty(bytes32)
    self.audit_bad[r] = bad
    log AuditRevealed(round=r, bad=bad)


# ---------------------------------------------------------------------------------------------
# Settlement


@internal
def _slash(a: address, sigma: uint256, reason: uint8, r: uint256):
    amt: uint256 = self.stake_of[a] * sigma // BPS
    if amt == 0:
        return
    self.stake_of[a] -= amt
    self.total_stake -= amt
    self.pool += amt
    self.total_slashed += amt
    log Slashed(peer=a, round=r, reason=reason, amount=amt)


@view
@internal
def _contains_c(xs: DynArray[address, MAX_COMMITTEE], a: address) -> bool:
    for x: address in xs:
        if x == a:
            return True
    return False


@view
@internal
def _contains_p(xs: DynArray[address, MAX_PROPOSERS], a: address) -> bool:
    for x: address in xs:
        if x == a:
            return True
    return False


@external
def settle():
    """
    @notice Close the round: slashes, then the budget pool // rounds_left split by stake among
            the rewarded; starts the next round (the last one fixes the funders' leftover).
    @dev Order (mirrored by chain/model.py):
         1. beacon committers that did not reveal: sigma_b.
         2. no standing result: nothing of any evidence applies (no vote checked it, and m - t
            members that share evidence but split the result would slash unchecked); silent
            members sigma_m; proposers without a bundle (or a response, with a window) sigma_p;
            nobody is paid.
         3. a standing result: tally A, R = stake of accept / reject revealers; drawn voters
            that did not reveal sigma_v. Outcome: audited (auditor revealed bad), else accepted
            iff (A + R) * BPS >= vote_quorum * (voters' stake) and A > R, rejected iff the quorum
            holds and R > A, else undecided (no quorum, or a tie: nobody wins a tie).
            A voter is slashed only when provably wrong: unrevealed, or accepting an audited
            known-bad candidate (reason AUDIT); the majority of an ordinary vote is paid and the
            minority is not (nor slashed: a diligent voter's honest misjudgement costs a reward,
            not its eligibility).
            accepted: model <- result; evidence applies: rejected sigma_c, servers sigma_s;
              accepted proposers paid, other proposers (not rejected) sigma_p; members that
              attested the standing result and are not servers paid, the other (not servers)
              sigma_m; accept-voters paid.
            audited: the evidence's fault slashes apply as when accepted (rejected sigma_c,
              servers sigma_s, unlisted proposers sigma_p, members off the standing result
              sigma_m: the committee cannot tell an audit round, the vote judged the auditor's
              candidate, not this result) but the model stays and only reject-voters are
              paid; accept-voters sigma_v (AUDIT).
            rejected: the evidence is dropped (a result the voters refused slashes nobody);
              reject-voters paid; silent members sigma_m; proposers without a bundle (or a
              response, with a window) sigma_p.
            undecided: nobody paid; silent members sigma_m; proposers without a bundle (or a response, with a window) sigma_p.
         4. rewards budget * stake // W; the tree weights of every touched peer are updated.
    """
    assert self._phase() == PHASE_SETTLE  # dev: not settle phase
    self._draw_roles()
    r: uint256 = self.round
    p: TaskParams = self.params
    budget: uint256 = self.pool // self.rounds_left
    for a: address in self.beacon_committers[r]:
        if not self.beacon_revealed[r][a]:
            self._slash(a, p.sigma_b, SLASH_BEACON, r)
    h: bytes32 = self.winning[r]
    stands: bool = h != empty(bytes32)
    outcome: uint8 = OUTCOME_VOID
    acc_stake: uint256 = 0
    rej_stake: uint256 = 0
    rewarded: DynArray[address, MAX_ROLES] = []
    if stands:
        voter_stake: uint256 = 0
        for a: address in self.voters:
            v: uint8 = self.vote_of[r][a]
            voter_stake += self.stake_of[a]
            if v == VOTE_ACCEPT:
                acc_stake += self.stake_of[a]
            elif v == VOTE_REJECT:
                rej_stake += self.stake_of[a]
        for a: address in self.voters:
            if self.vote_of[r][a] == VOTE_NONE:
                self._slash(a, p.sigma_v, SLASH_WITHHELD, r)
        quorum: bool = (acc_stake + rej_stake) * BPS >= p.vote_quorum * voter_stake
        if self.audit_bad[r]:
            outcome = OUTCOME_AUDITED
        elif quorum and acc_stake > rej_stake:
            outcome = OUTCOME_ACCEPTED
        elif quorum and rej_stake > acc_stake:
            outcome = OUTCOME_REJECTED
        else:
            outcome = OUTCOME_UNDECIDED
        if outcome == OUTCOME_ACCEPTED:
            self.model_hash = self.ev_result[h]
        if outcome == OUTCOME_ACCEPTED or outcome == OUTCOME_AUDITED:
            paid_roles: bool = outcome == OUTCOME_ACCEPTED
            accepted: DynArray[address, MAX_PROPOSERS] = self.ev_accepted[h]
            rejected: DynArray[address, MAX_PROPOSERS] = self.ev_rejected[h]
            servers: DynArray[address, MAX_COMMITTEE] = self.ev_servers[h]
            for a: address in rejected:
                self._slash(a, p.sigma_c, SLASH_CLIENT, r)
            for a: address in servers:
                self._slash(a, p.sigma_s, SLASH_SERVER, r)
            for a: address in self.proposers:
                if self._contains_p(accepted, a):
                    if paid_roles:
                        rewarded.append(a)
                elif not self._contains_p(rejected, a):
                    self._slash(a, p.sigma_p, SLASH_PROPOSER, r)
            for a: address in self.committee:
                if self._contains_c(servers, a):
                    continue
                if self.attestation_of[r][a] == h:
                    if paid_roles:
                        rewarded.append(a)
                else:
                    self._slash(a, p.sigma_m, SLASH_MEMBER, r)
            if paid_roles:
                for a: address in self.voters:
                    if self.vote_of[r][a] == VOTE_ACCEPT:
                        rewarded.append(a)
        if outcome == OUTCOME_REJECTED or outcome == OUTCOME_AUDITED:
            for a: address in self.voters:
                v: uint8 = self.vote_of[r][a]
                if v == VOTE_REJECT:
                    rewarded.append(a)
                elif v == VOTE_ACCEPT and outcome == OUTCOME_AUDITED:
                    self._slash(a, p.sigma_v, SLASH_AUDIT, r)
    if outcome != OUTCOME_ACCEPTED and outcome != OUTCOME_AUDITED:
        for a: address in self.committee:
            if self.attestation_of[r][a] == empty(bytes32):
                self._slash(a, p.sigma_m, SLASH_MEMBER, r)
        for a: address in self.proposers:
            if self.bundle_of[r][a] == empty(bytes32) or (p.response_blocks > 0 and self.response_of[r][a] == empty(bytes32)):
                self._slash(a, p.sigma_p, SLASH_PROPOSER, r)
    paid: uint256 = 0
    weight: uint256 = 0
    for a: address in rewarded:
        weight += self.stake_of[a]
    if weight > 0:
        for a: address in rewarded:
            amt: uint256 = budget * self.stake_of[a] // weight
            self.stake_of[a] += amt
            paid += amt
            log Rewarded(peer=a, round=r, amount=amt)
        self.pool -= paid
        self.total_stake += paid
        self.total_rewarded += paid
    # the touched peers' weights for the next draws
    for a: address in self.beacon_committers[r]:
        self._sync(a)
    for a: address in self.committee:
        self._sync(a)
    for a: address in self.proposers:
        self._sync(a)
    for a: address in self.voters:
        self._sync(a)
    log RoundSettled(round=r, stands=stands, accepted=outcome == OUTCOME_ACCEPTED, model=self.model_hash, accept_stake=acc_stake, reject_stake=rej_stake, budget=budget, paid=paid, outcome=outcome)
    # next round
    self.rounds_left -= 1
    if self.rounds_left == 0:
        self.leftover = self.pool
    self.round = r + 1
    self.round_start = block.number
    self.prev_seed = self.seed
    s: bytes32 = keccak256(abi_encode(self.seed, r + 1))
    self.seed_start = s
    self.seed = s
    self.beacon_mix = empty(bytes32)
    self.roles_drawn = False
    self.committee = []
    self.proposers = []
    self.voters = []
