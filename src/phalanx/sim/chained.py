"""The whole Phalanx round with the ledger (architecture.md, data flow 1–6; protocol.md §4).

Beacon commit–reveal → roles by the contract's stake-weighted sortition → proposers train,
prepare and commit to their inputs on chain → the elected committee aggregates (plaintext or MPC)
and attests the result hash with its evidence (rejected clients, identified servers) → voters
judge the candidate on their own held-out data, commit and reveal → settlement rewards and
slashes, and the global model moves only if the vote accepted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from eth_account import Account
from eth_account.signers.local import LocalAccount

from phalanx.chain.ledger import Attestation, ContractLedger, Roles, make_ledger
from phalanx.chain.model import Phase, Settlement, TaskParams, is_accept_vote
from phalanx.ml.data import Dataset
from phalanx.ml.train import evaluate, set_flat_params
from phalanx.sim.config import SimConfig
from phalanx.sim.federation import (
    Federation,
    Proposal,
    RoundMetrics,
    apply_proposal,
    build_federation,
    hold_out_validation,
    propose_and_aggregate,
    round_metrics,
    timed,
)

ETHER = 10**18
#: every peer's initial stake (wei) and the task's reward pool
STAKE = 10 * ETHER
POOL = 100 * ETHER
#: the minimum stake: a peer slashed below it is never selected again
MIN_STAKE = 5 * ETHER


@dataclass
class ChainedFederation:
    """A federation whose rounds are run by the contract."""

    fed: Federation
    ledger: ContractLedger
    accounts: list[LocalAccount]
    peer_of: dict[str, int]
    validation: list[tuple[torch.Tensor, torch.Tensor]]
    rng: np.random.Generator
    secrets: dict[str, bytes] = field(default_factory=dict)


def build_chained(cfg: SimConfig, data: Dataset | None = None) -> ChainedFederation:
    """Deploy the task, register every peer with the same stake, hold out validation data."""
    fed = build_federation(cfg, data)
    rng = np.random.default_rng([cfg.seed, 99])
    validation = hold_out_validation(fed, rng, cfg.validation_fraction)
    accounts = [Account.from_key(rng.bytes(32)) for _ in range(cfg.peers)]
    deployer = Account.from_key(rng.bytes(32))
    proposers = cfg.proposers or cfg.peers - cfg.committee - cfg.voters
    params = TaskParams(min_stake=MIN_STAKE, committee_size=cfg.committee,
                        threshold=cfg.threshold, n_proposers=proposers,
                        n_voters=cfg.voters, rounds=cfg.rounds,
                        epsilon=int(round(cfg.epsilon * 10_000)),
                        # registration spans the peers' registrations (blocks are mined explicitly)
                        registration_blocks=2)
    ledger = make_ledger(cfg.ledger, params=params, deployer=deployer, pool=POOL,
                         genesis_seed=rng.bytes(32), initial_model=model_hash(fed.global_params))
    run = ChainedFederation(fed, ledger, accounts, {a.address: i for i, a in enumerate(accounts)},
                            validation, rng)
    for acct in accounts:
        ledger.faucet(acct.address, STAKE + ETHER)
        ledger.register(acct, STAKE, rng.bytes(32), f"sim://{acct.address[2:10]}")
        if ledger.may_commit_beacon(acct.address):  # round 0: the first k registered
            commit_beacon(run, acct)
    return run


def model_hash(params: np.ndarray) -> bytes:
    """Content address of a model or update: sha256 of its float32 bytes."""
    return hashlib.sha256(np.ascontiguousarray(params, dtype=np.float32).tobytes()).digest()


def commit_beacon(run: ChainedFederation, acct: LocalAccount) -> None:
    secret = run.rng.bytes(32)
    run.ledger.commit_beacon(acct, secret)
    run.secrets[acct.address] = secret


def draw_roles(run: ChainedFederation) -> Roles:
    """Reveal last round's beacon secrets, close the beacon, read the roles; the role holders
    commit the next round's secrets."""
    led = run.ledger
    led.advance_to(Phase.BEACON)
    pending, run.secrets = run.secrets, {}
    for address, secret in pending.items():
        led.reveal_beacon(run.accounts[run.peer_of[address]], secret)
    led.advance_to(Phase.PROPOSE)
    led.close_beacon(run.accounts[0])
    roles = led.get_roles()
    for address in roles.committee + roles.proposers + roles.voters:
        if led.may_commit_beacon(address):
            commit_beacon(run, run.accounts[run.peer_of[address]])
    return roles


def post_commitments(run: ChainedFederation, proposal: Proposal) -> None:
    """Each registered proposer commits on chain to the hash of the input it sent."""
    for peer, vec in zip(proposal.ids, proposal.prepared, strict=True):
        if peer < len(run.accounts):
            run.ledger.post_bundle(run.accounts[peer], model_hash(vec))


def attest(run: ChainedFederation, roles: Roles, proposal: Proposal, result: bytes) -> None:
    """Every committee member attests the result hash and the evidence of the MPC."""
    agg = proposal.outcome.aggregate
    if not proposal.usable:
        return  # an aborted committee attests nothing: the round cannot stand
    rejected = tuple((run.accounts[proposal.ids[r.index]].address, r.reason)
                     for r in agg.rejected if proposal.ids[r.index] < len(run.accounts))
    cheaters = proposal.outcome.extra.get("cheating_servers", [])
    servers = tuple(roles.committee[i] for i in cheaters)
    out = {a for a, _ in rejected}  # payment follows delivery: the counted inputs
    accepted = tuple(run.accounts[i].address for i in proposal.ids
                     if i < len(run.accounts) and run.accounts[i].address not in out)
    attestation = Attestation(result, rejected, servers, accepted)
    run.ledger.advance_to(Phase.ATTEST)
    for member in roles.committee:
        if run.peer_of[member] not in servers:
            run.ledger.attest(run.accounts[run.peer_of[member]], attestation)


def judge(run: ChainedFederation, voter: int, candidate: np.ndarray) -> bool:
    """A voter's ballot: accept iff candidate accuracy ≥ (1 − ε) · current, on its own data,
    with the task's on-chain ε.

    Malicious voters (under an attack, with ``voting_attack``) cast the opposite ballot.
    """
    fed, (x, y) = run.fed, run.validation[voter]
    set_flat_params(fed.model, fed.global_params)
    current, _ = evaluate(fed.model, x, y)
    set_flat_params(fed.model, candidate)
    proposed, _ = evaluate(fed.model, x, y)
    honest = is_accept_vote(proposed, current, run.ledger.params.epsilon)
    lying = voter in fed.malicious and fed.cfg.voting_attack and fed.cfg.attack != "none"
    return honest != lying


def vote(run: ChainedFederation, roles: Roles, candidate: np.ndarray) -> dict[int, bool]:
    """Commit, then reveal, every voter's ballot (only when a result stands)."""
    led = run.ledger
    if led.get_round_state().winning == b"\x00" * 32 or not roles.voters:
        return {}
    ballots = {run.peer_of[v]: judge(run, run.peer_of[v], candidate) for v in roles.voters}
    salts = {peer: run.rng.bytes(32) for peer in ballots}
    led.advance_to(Phase.COMMIT)
    for peer, accept in ballots.items():
        led.commit_vote(run.accounts[peer], accept, salts[peer])
    led.advance_to(Phase.REVEAL)
    for peer, accept in ballots.items():
        led.reveal_vote(run.accounts[peer], accept, salts[peer])
    return ballots


def run_chained_round(run: ChainedFederation, rnd: int) -> RoundMetrics:
    """One full round; the model moves only when the settled vote accepted the candidate."""
    fed = run.fed
    seconds: dict[str, float] = {}
    with timed(seconds, "chain"):
        roles = draw_roles(run)
    proposal = propose_and_aggregate(fed, rnd, seconds,
                                     proposers=[run.peer_of[a] for a in roles.proposers])
    candidate = fed.global_params + proposal.outcome.aggregate.vector
    result = model_hash(candidate)
    with timed(seconds, "chain"):
        post_commitments(run, proposal)
        attest(run, roles, proposal, result)
    with timed(seconds, "vote"):
        ballots = vote(run, roles, candidate)
    with timed(seconds, "chain"):
        run.ledger.advance_to(Phase.SETTLE)
        settlement = run.ledger.settle(run.accounts[0])
    if settlement.accepted and settlement.model == result:
        apply_proposal(fed, proposal)
    metrics = round_metrics(fed, rnd, proposal, seconds)
    metrics.extra["ledger"] = ledger_summary(run, roles, ballots, settlement)
    return metrics


def ledger_summary(run: ChainedFederation, roles: Roles, ballots: dict[int, bool],
                   settlement: Settlement) -> dict[str, Any]:
    """What the chain decided this round, by peer id."""
    stakes = stakes_by_peer(run)
    bad = run.fed.malicious
    return {
        "committee": [run.peer_of[a] for a in roles.committee],
        "voters": [run.peer_of[a] for a in roles.voters],
        "ballots": {str(k): v for k, v in sorted(ballots.items())},
        "stands": settlement.stands,
        "accepted": settlement.accepted,
        "slashed": [[run.peer_of.get(a, -1), reason.name.lower(), amount / ETHER]
                    for a, reason, amount in settlement.slashes],
        "rewarded_ether": sum(settlement.rewards.values()) / ETHER,
        "honest_stake_ether": sum(s for i, s in enumerate(stakes) if i not in bad) / ETHER,
        "malicious_stake_ether": sum(s for i, s in enumerate(stakes) if i in bad) / ETHER,
        "pool_ether": run.ledger.get_round_state().pool / ETHER,
    }


def stakes_by_peer(run: ChainedFederation) -> Sequence[int]:
    """Every peer's current stake (wei)."""
    return [run.ledger.get_stake(a.address) for a in run.accounts]
