# pragma version 0.4.3
"""
@title Phalanx task ledger
@notice One federated-learning task: stake, beacon, stake-weighted roles, bundle commitments,
        committee attestations with MPC evidence, voter commit-reveal and reward-and-slash
        (protocol.md section 4, after FLock).
@dev    Amounts are wei of the native coin; fractions are basis points (1/10_000); deadlines
        are block counts. phalanx/chain/model.py mirrors every integer computation bit for bit.
@custom:kill There is no owner and no kill switch: the deployer only creates the task.
"""

# ---------------------------------------------------------------------------------------------
# Caps (Vyper has no unbounded arrays; docs/ledger.md explains each)
MAX_PEERS: constant(uint256) = 256
MAX_COMMITTEE: constant(uint256) = 16
MAX_PROPOSERS: constant(uint256) = 32
MAX_VOTERS: constant(uint256) = 32
MAX_ROLES: constant(uint256) = 64
MAX_ENDPOINT: constant(uint256) = 128
BPS: constant(uint256) = 10000

# Sortition domains (keccak256(abi_encode(seed, DOMAIN, i)))
DOMAIN_PERM: constant(uint256) = 1
DOMAIN_SYSTEMATIC: constant(uint256) = 2
DOMAIN_ROLES: constant(uint256) = 3

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
SLASH_BEACON: constant(uint8) = 1
SLASH_CLIENT: constant(uint8) = 2
SLASH_SERVER: constant(uint8) = 3
SLASH_VOTER: constant(uint8) = 4
SLASH_PROPOSER: constant(uint8) = 5

# Round phases (get_phase)
PHASE_REGISTRATION: constant(uint8) = 0
PHASE_BEACON: constant(uint8) = 1
PHASE_PROPOSE: constant(uint8) = 2
PHASE_ATTEST: constant(uint8) = 3
PHASE_COMMIT: constant(uint8) = 4
PHASE_REVEAL: constant(uint8) = 5
PHASE_SETTLE: constant(uint8) = 6
PHASE_FINISHED: constant(uint8) = 7


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


event Registered:
    peer: indexed(address)
    stake: uint256
    x25519: bytes32
    endpoint: String[MAX_ENDPOINT]
    since_round: uint256

event Funded:
    sender: indexed(address)
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

event Attested:
    member: indexed(address)
    round: indexed(uint256)
    attestation: bytes32
    result: bytes32
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

# Peers
peer_list: public(DynArray[address, MAX_PEERS])
peer_index: HashMap[address, uint256]          # position + 1; 0 = not registered
stake_of: public(HashMap[address, uint256])
since_round: public(HashMap[address, uint256])
unbond_round: public(HashMap[address, uint256])  # 0 = bonded; else eligible only below it
withdraw_block: public(HashMap[address, uint256])
duty_round: public(HashMap[address, uint256])    # withdrawal waits until round >= this
x25519_of: public(HashMap[address, bytes32])
endpoint_of: public(HashMap[address, String[MAX_ENDPOINT]])

# Current round
round: public(uint256)
round_start: public(uint256)
seed: public(bytes32)          # running beacon accumulator of the current round
prev_seed: public(bytes32)     # final seed of the previous round (genesis seed for round 0)
roles_drawn: public(bool)
committee: public(DynArray[address, MAX_COMMITTEE])
proposers: public(DynArray[address, MAX_PROPOSERS])
voters: public(DynArray[address, MAX_VOTERS])

# Per round (keyed by round index, never cleared)
beacon_commit: public(HashMap[uint256, HashMap[address, bytes32]])
beacon_revealed: public(HashMap[uint256, HashMap[address, bool]])
beacon_committers: HashMap[uint256, DynArray[address, MAX_PEERS]]
role_of: public(HashMap[uint256, HashMap[address, uint8]])
bundle_of: public(HashMap[uint256, HashMap[address, bytes32]])
attestation_of: public(HashMap[uint256, HashMap[address, bytes32]])
attestation_count: public(HashMap[bytes32, uint256])
winning: public(HashMap[uint256, bytes32])
vote_commit: public(HashMap[uint256, HashMap[address, bytes32]])
vote_of: public(HashMap[uint256, HashMap[address, uint8]])

# Evidence of each distinct attestation (keyed by its hash, which includes the round)
ev_result: public(HashMap[bytes32, bytes32])
ev_rejected: HashMap[bytes32, DynArray[address, MAX_PROPOSERS]]
ev_reasons: HashMap[bytes32, DynArray[uint8, MAX_PROPOSERS]]
ev_servers: HashMap[bytes32, DynArray[address, MAX_COMMITTEE]]


@deploy
@payable
def __init__(p: TaskParams, genesis_seed: bytes32, initial_model: bytes32):
    """
    @notice Create the task; the value sent is the reward pool.
    @param p Task parameters (units: wei, basis points, blocks).
    @param genesis_seed Seed that round 0's beacon starts from.
    @param initial_model Hash of the initial global model.
    """
    assert p.min_stake > 0  # dev: min_stake is zero
    assert p.committee_size >= 3 * p.threshold + 1  # dev: committee needs m >= 3t+1
    assert p.committee_size <= MAX_COMMITTEE  # dev: committee too large
    assert p.n_proposers >= 1 and p.n_proposers <= MAX_PROPOSERS  # dev: bad n_proposers
    assert p.n_voters >= 1 and p.n_voters <= MAX_VOTERS  # dev: bad n_voters
    assert p.committee_size + p.n_proposers + p.n_voters <= MAX_ROLES  # dev: too many roles
    assert p.rounds > 0  # dev: rounds is zero
    assert p.sigma_b <= BPS and p.sigma_c <= BPS and p.sigma_s <= BPS  # dev: fraction above 1
    assert p.sigma_v <= BPS and p.sigma_p <= BPS and p.epsilon <= BPS  # dev: fraction above 1
    assert p.beacon_blocks > 0 and p.propose_blocks > 0 and p.attest_blocks > 0  # dev: empty phase
    assert p.commit_blocks > 0 and p.reveal_blocks > 0  # dev: empty phase
    self.params = p
    self.pool = msg.value
    self.total_funded = msg.value
    self.rounds_left = p.rounds
    self.model_hash = initial_model
    self.round_start = block.number + p.registration_blocks
    self.prev_seed = genesis_seed
    self.seed = keccak256(abi_encode(genesis_seed, convert(0, uint256)))
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
@internal
def _is_eligible(a: address, r: uint256) -> bool:
    if self.since_round[a] > r:
        return False
    u: uint256 = self.unbond_round[a]
    if u != 0 and r >= u:
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
    return self.peer_index[peer] != 0 and self._is_eligible(peer, r)


@pure
@internal
def _rand(seed: bytes32, domain: uint256, i: uint256) -> uint256:
    return convert(keccak256(abi_encode(seed, domain, i)), uint256)


@view
@internal
def _sortition(seed: bytes32, r: uint256) -> DynArray[address, MAX_ROLES]:
    """
    Stake-weighted sampling without replacement with inclusion probability proportional to
    stake (systematic PPS over a seeded random order; take-all for stakes above S/k).
    """
    k: uint256 = self.params.committee_size + self.params.n_proposers + self.params.n_voters
    cands: DynArray[address, MAX_PEERS] = []
    stakes: DynArray[uint256, MAX_PEERS] = []
    for a: address in self.peer_list:
        if self._is_eligible(a, r):
            cands.append(a)
            stakes.append(self.stake_of[a])
    n: uint256 = len(cands)
    out: DynArray[address, MAX_ROLES] = []
    if n < k:
        return out
    # Fisher-Yates: random order of the candidates
    for j: uint256 in range(n, bound=MAX_PEERS):
        i: uint256 = n - 1 - j
        if i == 0:
            break
        s: uint256 = self._rand(seed, DOMAIN_PERM, i) % (i + 1)
        ta: address = cands[i]
        cands[i] = cands[s]
        cands[s] = ta
        ts: uint256 = stakes[i]
        stakes[i] = stakes[s]
        stakes[s] = ts
    total: uint256 = 0
    for x: uint256 in stakes:
        total += x
    # Take-all: while the largest remaining stake exceeds S/k, take it with certainty
    taken: DynArray[bool, MAX_PEERS] = []
    for j: uint256 in range(n, bound=MAX_PEERS):
        taken.append(False)
    k_rem: uint256 = k
    s_rem: uint256 = total
    for q: uint256 in range(MAX_ROLES):
        if k_rem == 0:
            break
        best: uint256 = 0
        best_pos: uint256 = 0
        for j: uint256 in range(n, bound=MAX_PEERS):
            if not taken[j] and stakes[j] > best:
                best = stakes[j]
                best_pos = j
        if best * k_rem <= s_rem:
            break
        taken[best_pos] = True
        out.append(cands[best_pos])
        k_rem -= 1
        s_rem -= best
    # Systematic: points u + j*s_rem on [0, k_rem*s_rem), one per remaining seat
    if k_rem > 0:
        u: uint256 = self._rand(seed, DOMAIN_SYSTEMATIC, 0) % s_rem
        acc: uint256 = 0
        hits: uint256 = 0
        for j: uint256 in range(n, bound=MAX_PEERS):
            if hits == k_rem:
                break
            if taken[j]:
                continue
            acc += stakes[j]
            if u + hits * s_rem < acc * k_rem:
                out.append(cands[j])
                hits += 1
    # Shuffle the seats so that the role order is random
    for j: uint256 in range(k, bound=MAX_ROLES):
        i: uint256 = k - 1 - j
        if i == 0:
            break
        s: uint256 = self._rand(seed, DOMAIN_ROLES, i) % (i + 1)
        ta: address = out[i]
        out[i] = out[s]
        out[s] = ta
    return out


@view
@external
def compute_sortition(seed: bytes32, r: uint256) -> DynArray[address, MAX_ROLES]:
    """
    @notice The seats drawn from `seed` over the peers eligible in round r, with current stakes:
            the first m are the committee, then the proposers, then the voters (disjoint).
    @dev O(k*n) in memory; empty when fewer than k peers are eligible.
    @param seed The round seed.
    @param r The round index for eligibility.
    @return The seat holders in order.
    """
    return self._sortition(seed, r)


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
def peer_count() -> uint256:
    """
    @notice Number of registered peers (unbonding ones included).
    @return The count.
    """
    return len(self.peer_list)


@view
@external
def get_evidence(attestation: bytes32) -> (bytes32, DynArray[address, MAX_PROPOSERS], DynArray[uint8, MAX_PROPOSERS], DynArray[address, MAX_COMMITTEE]):
    """
    @notice The evidence behind an attestation hash.
    @param attestation keccak256(abi_encode(round, result, rejected, reasons, servers)).
    @return result, rejected clients, their reason codes, identified servers.
    """
    return self.ev_result[attestation], self.ev_rejected[attestation], self.ev_reasons[attestation], self.ev_servers[attestation]


@view
@external
def get_beacon_committers(r: uint256) -> DynArray[address, MAX_PEERS]:
    """
    @notice Peers that committed a beacon secret for round r.
    @param r The round index.
    @return The committers in commit order.
    """
    return self.beacon_committers[r]


# ---------------------------------------------------------------------------------------------
# Stake


@payable
@external
@nonreentrant
def register(x25519: bytes32, endpoint: String[MAX_ENDPOINT]):
    """
    @notice Register the caller with the value sent as stake, its X25519 key and endpoint.
    @dev Eligible from the next round (round 0 when registered before it starts).
    @param x25519 The peer's X25519 public key for sealed bundles.
    @param endpoint Where the peer listens (e.g. host:port).
    """
    assert self.rounds_left > 0  # dev: task finished
    assert self.peer_index[msg.sender] == 0  # dev: already registered
    assert msg.value >= self.params.min_stake  # dev: stake below minimum
    assert len(self.peer_list) < MAX_PEERS  # dev: too many peers
    since: uint256 = self.round
    if block.number >= self.round_start:
        since += 1
    self.peer_list.append(msg.sender)
    self.peer_index[msg.sender] = len(self.peer_list)
    self.stake_of[msg.sender] = msg.value
    self.since_round[msg.sender] = since
    self.unbond_round[msg.sender] = 0
    self.duty_round[msg.sender] = 0
    self.x25519_of[msg.sender] = x25519
    self.endpoint_of[msg.sender] = endpoint
    self.total_stake += msg.value
    log Registered(peer=msg.sender, stake=msg.value, x25519=x25519, endpoint=endpoint, since_round=since)


@payable
@external
def fund():
    """
    @notice Add the value sent to the reward pool (anyone may).
    """
    assert msg.value > 0  # dev: nothing sent
    self.pool += msg.value
    self.total_funded += msg.value
    log Funded(sender=msg.sender, amount=msg.value)


@external
def unbond():
    """
    @notice Stop being drawn after the current round; withdraw after the unbonding delay.
    """
    assert self.peer_index[msg.sender] != 0  # dev: not registered
    assert self.unbond_round[msg.sender] == 0  # dev: already unbonding
    last: uint256 = self.round + 1
    self.unbond_round[msg.sender] = last
    self.duty_round[msg.sender] = max(self.duty_round[msg.sender], last)
    wb: uint256 = block.number + self.params.unbond_delay
    self.withdraw_block[msg.sender] = wb
    log UnbondRequested(peer=msg.sender, last_round=self.round, withdraw_block=wb)


@external
@nonreentrant
def withdraw():
    """
    @notice Pay the caller's whole remaining stake and deregister it.
    @dev Checks-effects-interactions and a re-entrancy lock; waits for the delay and for every
         round in which the peer had a duty (role or beacon reveal) to settle.
    """
    assert self.peer_index[msg.sender] != 0  # dev: not registered
    assert self.unbond_round[msg.sender] != 0  # dev: not unbonding
    assert block.number >= self.withdraw_block[msg.sender]  # dev: unbonding delay
    assert self.rounds_left == 0 or self.round >= self.duty_round[msg.sender]  # dev: duty pending
    amount: uint256 = self.stake_of[msg.sender]
    # effects: remove the peer (swap and pop)
    pos: uint256 = self.peer_index[msg.sender] - 1
    last: address = self.peer_list[len(self.peer_list) - 1]
    self.peer_list[pos] = last
    self.peer_index[last] = pos + 1
    self.peer_list.pop()
    self.peer_index[msg.sender] = 0
    self.stake_of[msg.sender] = 0
    self.unbond_round[msg.sender] = 0
    self.total_stake -= amount
    log Withdrawn(peer=msg.sender, amount=amount)
    # interaction last
    raw_call(msg.sender, b"", value=amount)


# ---------------------------------------------------------------------------------------------
# Beacon


@external
def commit_beacon(commitment: bytes32):
    """
    @notice Commit keccak256(abi_encode(secret, sender, target_round)) for the next round's beacon.
    @dev The target is the current round during registration, else the next round. Not revealing
         in the target round's beacon phase is slashed sigma_b.
    @param commitment The commitment.
    """
    assert self.rounds_left > 0  # dev: task finished
    assert self.peer_index[msg.sender] != 0  # dev: not registered
    assert self.unbond_round[msg.sender] == 0  # dev: unbonding
    target: uint256 = self.round
    if block.number >= self.round_start:
        target += 1
    assert self.beacon_commit[target][msg.sender] == empty(bytes32)  # dev: already committed
    assert commitment != empty(bytes32)  # dev: empty commitment
    self.beacon_commit[target][msg.sender] = commitment
    self.beacon_committers[target].append(msg.sender)
    self.duty_round[msg.sender] = max(self.duty_round[msg.sender], target + 1)
    log BeaconCommitted(peer=msg.sender, round=target, commitment=commitment)


@external
def reveal_beacon(secret: bytes32):
    """
    @notice Reveal the secret committed for the current round; folds it into the seed.
    @param secret The committed secret.
    """
    assert self._phase() == PHASE_BEACON  # dev: not beacon phase
    r: uint256 = self.round
    c: bytes32 = self.beacon_commit[r][msg.sender]
    assert c != empty(bytes32)  # dev: no commitment
    assert not self.beacon_revealed[r][msg.sender]  # dev: already revealed
    assert keccak256(abi_encode(secret, msg.sender, r)) == c  # dev: bad reveal
    self.beacon_revealed[r][msg.sender] = True
    s: bytes32 = keccak256(concat(self.seed, secret))
    self.seed = s
    log BeaconRevealed(peer=msg.sender, round=r, secret=secret, seed=s)


@internal
def _draw_roles():
    if self.roles_drawn:
        return
    r: uint256 = self.round
    seats: DynArray[address, MAX_ROLES] = self._sortition(self.seed, r)
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


@external
def attest(result: bytes32, rejected: DynArray[address, MAX_PROPOSERS], reasons: DynArray[uint8, MAX_PROPOSERS], servers: DynArray[address, MAX_COMMITTEE]):
    """
    @notice A committee member attests the result hash with the MPC evidence; the result
            stands once m - t members posted the same attestation.
    @param result Hash of the aggregated candidate model.
    @param rejected Proposers whose inputs failed a check.
    @param reasons One reason code per rejected proposer (phalanx.errors.Reject order).
    @param servers Committee members identified as cheating.
    """
    self._in_phase(PHASE_ATTEST)
    r: uint256 = self.round
    assert self.role_of[r][msg.sender] == ROLE_COMMITTEE  # dev: not in committee
    assert self.attestation_of[r][msg.sender] == empty(bytes32)  # dev: already attested
    assert result != empty(bytes32)  # dev: empty result
    assert len(reasons) == len(rejected)  # dev: reasons length
    for i: uint256 in range(len(rejected), bound=MAX_PROPOSERS):
        c: address = rejected[i]
        assert self.bundle_of[r][c] != empty(bytes32)  # dev: rejected without bundle
        for j: uint256 in range(i, bound=MAX_PROPOSERS):
            assert rejected[j] != c  # dev: duplicate client
    for i: uint256 in range(len(servers), bound=MAX_COMMITTEE):
        s: address = servers[i]
        assert self.role_of[r][s] == ROLE_COMMITTEE  # dev: server not in committee
        for j: uint256 in range(i, bound=MAX_COMMITTEE):
            assert servers[j] != s  # dev: duplicate server
    h: bytes32 = keccak256(abi_encode(r, result, rejected, reasons, servers))
    self.attestation_of[r][msg.sender] = h
    n: uint256 = self.attestation_count[h] + 1
    self.attestation_count[h] = n
    if n == 1:
        self.ev_result[h] = result
        self.ev_rejected[h] = rejected
        self.ev_reasons[h] = reasons
        self.ev_servers[h] = servers
    log Attested(member=msg.sender, round=r, attestation=h, result=result, rejected=rejected, reasons=reasons, servers=servers)
    if n == self.params.committee_size - self.params.threshold and self.winning[r] == empty(bytes32):
        self.winning[r] = h
        log ResultStands(round=r, attestation=h, result=result)


# ---------------------------------------------------------------------------------------------
# Voters


@external
def commit_vote(commitment: bytes32):
    """
    @notice A voter commits keccak256(abi_encode(round, accept, salt, sender)).
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
    assert keccak256(abi_encode(r, accept, salt, msg.sender)) == c  # dev: bad reveal
    v: uint8 = VOTE_REJECT
    if accept:
        v = VOTE_ACCEPT
    self.vote_of[r][msg.sender] = v
    log VoteRevealed(voter=msg.sender, round=r, accept=accept)


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
    @notice Close the round: beacon, evidence and vote slashes, then the budget
            pool // rounds_left split by stake among the rewarded; starts the next round.
    @dev Order (mirrored by chain/model.py): budget; slash beacon non-revealers (sigma_b);
         if a result stands: rejected clients (sigma_c), identified servers (sigma_s), the losing
         voters (sigma_v), proposers of a rejected candidate (sigma_p); then rewards.
    """
    assert self._phase() == PHASE_SETTLE  # dev: not settle phase
    self._draw_roles()
    r: uint256 = self.round
    budget: uint256 = self.pool // self.rounds_left
    for a: address in self.beacon_committers[r]:
        if not self.beacon_revealed[r][a]:
            self._slash(a, self.params.sigma_b, SLASH_BEACON, r)
    h: bytes32 = self.winning[r]
    stands: bool = h != empty(bytes32)
    accepted: bool = False
    acc_stake: uint256 = 0
    rej_stake: uint256 = 0
    rewarded: DynArray[address, MAX_ROLES] = []
    if stands:
        rejected: DynArray[address, MAX_PROPOSERS] = self.ev_rejected[h]
        servers: DynArray[address, MAX_COMMITTEE] = self.ev_servers[h]
        for a: address in rejected:
            self._slash(a, self.params.sigma_c, SLASH_CLIENT, r)
        for a: address in servers:
            self._slash(a, self.params.sigma_s, SLASH_SERVER, r)
        for a: address in self.voters:
            v: uint8 = self.vote_of[r][a]
            if v == VOTE_ACCEPT:
                acc_stake += self.stake_of[a]
            elif v == VOTE_REJECT:
                rej_stake += self.stake_of[a]
        accepted = acc_stake >= rej_stake
        if accepted:
            self.model_hash = self.ev_result[h]
            for a: address in self.proposers:
                if self.bundle_of[r][a] != empty(bytes32) and not self._contains_p(rejected, a):
                    rewarded.append(a)
            for a: address in self.committee:
                if self.attestation_of[r][a] == h and not self._contains_c(servers, a):
                    rewarded.append(a)
            for a: address in self.voters:
                v: uint8 = self.vote_of[r][a]
                if v == VOTE_ACCEPT:
                    rewarded.append(a)
                elif v == VOTE_REJECT:
                    self._slash(a, self.params.sigma_v, SLASH_VOTER, r)
        else:
            for a: address in self.voters:
                v: uint8 = self.vote_of[r][a]
                if v == VOTE_REJECT:
                    rewarded.append(a)
                elif v == VOTE_ACCEPT:
                    self._slash(a, self.params.sigma_v, SLASH_VOTER, r)
            for a: address in self.proposers:
                if self.bundle_of[r][a] != empty(bytes32) and not self._contains_p(rejected, a):
                    self._slash(a, self.params.sigma_p, SLASH_PROPOSER, r)
    paid: uint256 = 0
    if stands:
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
    log RoundSettled(round=r, stands=stands, accepted=accepted, model=self.model_hash, accept_stake=acc_stake, reject_stake=rej_stake, budget=budget, paid=paid)
    # next round
    self.rounds_left -= 1
    self.round = r + 1
    self.round_start = block.number
    self.prev_seed = self.seed
    self.seed = keccak256(abi_encode(self.seed, r + 1))
    self.roles_drawn = False
    self.committee = []
    self.proposers = []
    self.voters = []
