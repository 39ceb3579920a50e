"""The in-process federation: peers train on private shards, attackers poison, a rule aggregates.

One round (architecture.md, data flow; plaintext or secure aggregation; ``sim/chained.py`` runs
the same steps under the ledger):
select proposers → local training → attacks → client-side ``rule.prepare`` → aggregate
(check + combine) → apply to the global model → evaluate. Every phase is timed and every rejected
input is recorded with its reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from phalanx.attacks.poisoning import Attack, AttackSpec, Knowledge, craft_updates, poison_data
from phalanx.ml.data import Dataset, load_dataset
from phalanx.ml.models import make_model
from phalanx.ml.partition import partition
from phalanx.ml.train import (
    TrainConfig,
    evaluate,
    get_flat_params,
    local_train,
    set_flat_params,
)
from phalanx.rules import Aggregate, Rule, RuleContext, make_rule
from phalanx.sim.config import MALFORMED_KINDS, SimConfig
from phalanx.sim.executor import Executor, InProcess, TrainJob, make_executor

Shard = tuple[torch.Tensor, torch.Tensor]
#: prepared inputs of a round: one (n, d) matrix, or a list when some are malformed
Inputs = Sequence[np.ndarray] | np.ndarray


@dataclass
class Federation:
    """The simulated world: data shards, who is malicious, the model and the rule."""

    cfg: SimConfig
    data: Dataset
    shards: list[Shard]
    root: Shard
    malicious: frozenset[int]
    model: torch.nn.Module
    rule: Rule
    attack: AttackSpec
    train_cfg: TrainConfig
    global_params: np.ndarray
    previous_update: np.ndarray
    aggregate_fn: AggregateFn
    #: where local training runs (``cfg.backend``); closed when the run ends
    executor: Executor = field(default_factory=InProcess)


class AggregateFn(Protocol):
    """``aggregate(rule, inputs, ctx, round, ids)``: ``ids`` are the inputs' peer ids (the
    secure path needs them to know which inputs come from faulty clients)."""

    def __call__(self, rule: Rule, inputs: Inputs, ctx: RuleContext, rnd: int,
                 ids: Sequence[int] | None = None) -> AggregateOutcome: ...


@dataclass
class AggregateOutcome:
    """An aggregate plus what the secure backend reports beyond it."""

    aggregate: Aggregate
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RoundMetrics:
    """One line of metrics.jsonl."""

    round: int
    accuracy: float
    loss: float
    attack_success_rate: float | None
    seconds: dict[str, float]
    proposers: int
    malicious_proposers: int
    accepted: int
    malicious_accepted: int
    rejected: list[dict[str, Any]]
    revealed: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)
    #: valid inputs whose revealed fltrust trust bit is 0 (neither accepted nor rejected)
    zero_trust: int = 0
    malicious_zero_trust: int = 0


def build_federation(cfg: SimConfig, data: Dataset | None = None) -> Federation:
    """Load the data, hold out the root set, split the rest among the peers, pick the attackers.

    ``data`` skips the loading (a grid of runs shares one copy; it is never modified).
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    if data is None:
        data = load_sim_dataset(cfg)
    order = rng.permutation(len(data.y_train))
    root_idx, rest = order[: cfg.root_size], order[cfg.root_size :]
    parts = partition(data.y_train[rest].numpy(), cfg.peers, cfg.partition, alpha=cfg.alpha,
                      shards_per_client=cfg.shards_per_client, seed=cfg.seed)
    if cfg.samples_per_peer:
        parts = [p if len(p) <= cfg.samples_per_peer
                 else np.sort(rng.choice(p, cfg.samples_per_peer, replace=False)) for p in parts]
    shards = [(data.x_train[rest[p]], data.y_train[rest[p]]) for p in parts]
    malicious = frozenset(int(i) for i in rng.permutation(cfg.peers)[: cfg.num_malicious])
    spec = AttackSpec(attack=Attack(cfg.attack), knowledge=Knowledge(cfg.knowledge),
                      **dict(cfg.attack_params))
    if spec.is_data_attack:
        for peer in sorted(malicious):
            shards[peer] = poison_data(spec, *shards[peer], data.num_classes, rng)
    model = make_model(cfg.model, data.input_shape, data.num_classes, seed=cfg.seed)
    params = get_flat_params(model)
    return Federation(
        cfg=cfg, data=data, shards=shards,
        root=(data.x_train[root_idx], data.y_train[root_idx]),
        malicious=malicious, model=model,
        rule=make_rule(cfg.rule, secure=cfg.secure, **dict(cfg.rule_params)),
        attack=spec,
        train_cfg=TrainConfig(epochs=cfg.local_epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                              momentum=cfg.momentum),
        global_params=params, previous_update=np.zeros_like(params),
        aggregate_fn=make_aggregate_fn(cfg, malicious),
        executor=make_executor(cfg.backend, cfg.ray_address, cfg.ray_cpus),
    )


def hold_out_validation(fed: Federation, rng: np.random.Generator,
                        fraction: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each peer keeps ``fraction`` of its shard as held-out data for voting."""
    validation = []
    for peer, (x, y) in enumerate(fed.shards):
        order = rng.permutation(len(y))
        cut = max(1, int(round(fraction * len(y))))
        val, train = order[:cut], order[cut:] if len(y) > cut else order
        validation.append((x[val], y[val]))
        fed.shards[peer] = (x[train], y[train])
    return validation


def load_sim_dataset(cfg: SimConfig) -> Dataset:
    """The configured dataset, from ``cfg.data_dir`` (or the loader's default locations)."""
    from pathlib import Path

    data_dir = None if cfg.data_dir is None else Path(cfg.data_dir).expanduser()
    return load_dataset(cfg.dataset, data_dir, seed=cfg.seed)


def make_aggregate_fn(cfg: SimConfig, malicious: frozenset[int] = frozenset()) -> AggregateFn:
    """The plaintext backend, or the committee MPC when ``cfg.secure``.

    Secure runs inject the configured protocol-level adversaries: ``cfg.num_corrupt_servers``
    committee members, a seeded choice per round, run ``cfg.server_attack``; the first
    ``cfg.num_faulty_clients`` malicious proposers of the round (by id) run ``cfg.client_fault``.
    """
    if not cfg.secure:
        def plaintext(rule: Rule, inputs: Inputs, ctx: RuleContext, rnd: int,
                      ids: Sequence[int] | None = None) -> AggregateOutcome:
            return AggregateOutcome(rule.aggregate(inputs, ctx))

        return plaintext
    from phalanx.attacks.servers import make_server_faults
    from phalanx.errors import ConfigError
    from phalanx.mpc.parties import SeededSecrets
    from phalanx.mpc.prg import derive
    from phalanx.net.envelope import x25519_envelope
    from phalanx.rules.secure import ClientFault, SecureBackend, SecureParams
    from phalanx.sim.secure_params import choose_frac_bits

    # every party's secrets from the OS, unless the run asked for reproducible (not secret) ones
    secrets = (SeededSecrets(derive(cfg.seed.to_bytes(8, "big"), "sim-party-secrets"))
               if cfg.reproducible_secrets else None)
    backends: dict[int, SecureBackend] = {}

    def adversaries(rnd: int, ids: Sequence[int] | None) -> dict[str, Any]:
        """This round's corrupt servers and faulty clients (indices into the inputs)."""
        out: dict[str, Any] = {}
        if cfg.num_corrupt_servers:
            rng = np.random.default_rng([cfg.seed, rnd, 11])
            corrupt = sorted(int(j) for j in rng.choice(cfg.committee, cfg.num_corrupt_servers,
                                                        replace=False))
            out["server_attack"] = cfg.server_attack
            out["corrupt_servers"] = corrupt
            out["server_faults"] = make_server_faults(cfg.server_attack, corrupt)
        if cfg.num_faulty_clients:
            if ids is None:
                raise ConfigError(f"client_fault={cfg.client_fault!r} needs the inputs' peer ids")
            bad = sorted(p for p in ids if p in malicious)[: cfg.num_faulty_clients]
            index = {p: i for i, p in enumerate(ids)}
            out["client_fault"] = cfg.client_fault
            out["faulty_clients"] = bad
            out["client_faults"] = {index[p]: ClientFault(cfg.client_fault) for p in bad}
        return out

    def secure(rule: Rule, inputs: Inputs, ctx: RuleContext, rnd: int,
               ids: Sequence[int] | None = None) -> AggregateOutcome:
        n = len(inputs)
        f = cfg.frac_bits if cfg.frac_bits is not None else choose_frac_bits(
            cfg.rule, dict(cfg.rule_params), ctx.dim, max(n, cfg.peers + cfg.malformed_peers),
            m=cfg.committee, t=cfg.threshold)
        backend = backends.get(f)
        if backend is None:
            backend = backends[f] = SecureBackend(
                SecureParams(m=cfg.committee, t=cfg.threshold, frac_bits=f,
                             trust_bit=cfg.reveals_trust_bit),
                envelope=x25519_envelope, secrets=secrets)
        # the round's public beacon stand-in: nothing secret derives from it
        seed = np.random.default_rng([cfg.seed, rnd, 7]).bytes(32)
        adv = adversaries(rnd, ids)
        res = backend.aggregate(rule, list(inputs), ctx, seed=seed, client_ids=ids,
                                server_faults=adv.pop("server_faults", None),
                                client_faults=adv.pop("client_faults", None))
        peer = (lambda i: i) if ids is None else ids.__getitem__
        refused = [{**v, "client": peer(v["client"])} for v in res.stats["protocol_violations"]]
        extra = {"cheating_servers": list(res.cheating_servers), "aborted": res.aborted,
                 "dropped_servers": list(res.stats["dropped_servers"]),
                 "frac_bits": f, "reproducible_secrets": res.stats["reproducible_secrets"],
                 "server_evidence": res.stats["server_evidence"],
                 "protocol_violations": refused,
                 "phase_s": dict(res.stats["phase_s"]),
                 "slowest_server_s": max(res.stats["server_s"], default=0.0),
                 "upload_bytes_per_client": res.stats["upload_bytes_per_client"]}
        if adv:
            extra["adversaries"] = adv
        return AggregateOutcome(res.aggregate, extra)

    return secure


@contextmanager
def timed(seconds: dict[str, float], phase: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[phase] = seconds.get(phase, 0.0) + time.perf_counter() - start


def select_proposers(fed: Federation, rnd: int) -> list[int]:
    """This round's proposers: every peer, or a seeded uniform sample of ``cfg.proposers``."""
    cfg = fed.cfg
    if cfg.proposers == 0 or cfg.proposers >= cfg.peers:
        return list(range(cfg.peers))
    rng = np.random.default_rng([cfg.seed, rnd, 1])
    return sorted(int(i) for i in rng.choice(cfg.peers, cfg.proposers, replace=False))


def train_updates(fed: Federation, peers: Sequence[int], rnd: int) -> np.ndarray:
    """Local training of ``peers`` from the global model: a (k, d) float32 array."""
    if not peers:
        return np.zeros((0, fed.global_params.size), np.float32)
    seeds = [fed.cfg.seed * 1_000_003 + rnd * 10_007 + p for p in peers]
    return fed.executor.train(TrainJob(rnd, fed.model, fed.global_params, list(peers),
                                       [fed.shards[p] for p in peers], fed.train_cfg, seeds))


def reference_for(fed: Federation, rnd: int) -> np.ndarray | None:
    """The rule's public vector: g_0 from the root dataset (fltrust) or the last update (cc)."""
    if fed.rule.name == "fltrust":
        set_flat_params(fed.model, fed.global_params)
        return local_train(fed.model, *root_batch(fed, rnd), fed.train_cfg,
                           seed=fed.cfg.seed + rnd)
    if fed.rule.name in ("cc", "cc-iter"):
        return fed.previous_update.copy()
    return None


def root_batch(fed: Federation, rnd: int) -> Shard:
    """The root data g_0 trains on this round: at most the median peer's number of examples.

    FLTrust's server runs the same local iterations as the clients (Cao et al. 2021, §4); with
    epochs as the unit, that means training on as many examples as a typical client. A root set
    larger than a client's shard would otherwise take more steps, and since the output's norm is
    ‖g_0‖, every round would step further than any client does (seen diverging on digits).
    """
    x, y = fed.root
    typical = int(np.median([len(s[1]) for s in fed.shards]))
    if typical >= len(y):
        return x, y
    pick = np.random.default_rng([fed.cfg.seed, rnd, 3]).choice(len(y), typical, replace=False)
    idx = torch.as_tensor(np.sort(pick))
    return x[idx], y[idx]


def malformed_update(kind: str, dim: int) -> np.ndarray:
    """What a broken peer sends: NaN, inf, or a vector of the wrong length."""
    if kind == "nan":
        return np.full(dim, np.nan, np.float32)
    if kind == "inf":
        return np.full(dim, np.inf, np.float32)
    return np.zeros(dim + 1, np.float32)


def collect_updates(fed: Federation, rnd: int, seconds: dict[str, float],
                    proposers: Sequence[int] | None = None) -> tuple[list[int], list[np.ndarray]]:
    """Every proposer's raw update, attacks applied; broken peers' garbage appended last.

    ``proposers`` defaults to :func:`select_proposers` (the ledger's sortition in chained runs).
    """
    proposers = select_proposers(fed, rnd) if proposers is None else sorted(proposers)
    honest = [p for p in proposers if p not in fed.malicious]
    bad = [p for p in proposers if p in fed.malicious]
    with timed(seconds, "train"):
        updates = train_updates(fed, honest + bad, rnd)
    honest_u, bad_u = updates[: len(honest)], updates[len(honest) :]
    with timed(seconds, "attack"):
        if bad and fed.attack.attack is not Attack.NONE:
            known = honest_u if fed.attack.knowledge is Knowledge.OMNISCIENT else None
            bad_u = craft_updates(fed.attack, bad_u, known,
                                  rng=np.random.default_rng([fed.cfg.seed, rnd, 2]),
                                  previous_global_update=fed.previous_update,
                                  num_clients=len(proposers))
    ids = honest + bad
    raw = list(honest_u) + list(bad_u)
    for j in range(fed.cfg.malformed_peers):
        ids.append(fed.cfg.peers + j)
        raw.append(malformed_update(MALFORMED_KINDS[j % len(MALFORMED_KINDS)],
                                    fed.global_params.size))
    return ids, raw


@dataclass
class Proposal:
    """One round's candidate: who proposed what, and the committee's aggregate."""

    ids: list[int]
    prepared: Inputs
    outcome: AggregateOutcome

    @property
    def usable(self) -> bool:
        """Finite and not aborted: the only kind of aggregate that may touch the model."""
        agg = self.outcome.aggregate
        return bool(np.isfinite(agg.vector).all()) and not self.outcome.extra.get("aborted")


def propose_and_aggregate(fed: Federation, rnd: int, seconds: dict[str, float],
                          proposers: Sequence[int] | None = None) -> Proposal:
    """Train, attack, prepare on the clients, then aggregate (steps 2–6 of the round)."""
    ids, raw = collect_updates(fed, rnd, seconds, proposers)
    with timed(seconds, "reference"):
        reference = reference_for(fed, rnd)
    ctx = RuleContext(dim=fed.global_params.size, reference=reference,
                      num_byzantine=fed.cfg.num_malicious)
    with timed(seconds, "prepare"):
        prepared = prepare_inputs(fed, ids, raw, ctx)
    with timed(seconds, "aggregate"):
        outcome = fed.aggregate_fn(fed.rule, prepared, ctx, rnd, ids)
    return Proposal(ids, prepared, outcome)


def prepare_inputs(fed: Federation, ids: Sequence[int], raw: Sequence[np.ndarray],
                   ctx: RuleContext) -> Inputs:
    """Each client's ``rule.prepare``; broken peers (ids >= peers) send their garbage as it is.

    Well-formed inputs are written into one (n, d) matrix, which the plaintext rules aggregate
    without another copy of n·d floats.
    """
    inputs = [fed.rule.prepare(u, ctx) if peer < fed.cfg.peers else u
              for peer, u in zip(ids, raw, strict=True)]
    if not inputs or any(u.shape != (ctx.dim,) for u in inputs):
        return inputs
    matrix = np.empty((len(inputs), ctx.dim), np.float32)
    for row, vec in zip(matrix, inputs, strict=True):
        row[:] = vec
    return matrix


def apply_proposal(fed: Federation, proposal: Proposal) -> None:
    """Move the global model by the aggregate (only a usable one)."""
    if proposal.usable:
        vector = proposal.outcome.aggregate.vector
        fed.global_params = (fed.global_params + vector).astype(np.float32)
        fed.previous_update = vector.astype(np.float32)


def run_round(fed: Federation, rnd: int) -> RoundMetrics:
    """One round; mutates ``fed.global_params`` only once the aggregate is known to be finite."""
    seconds: dict[str, float] = {}
    proposal = propose_and_aggregate(fed, rnd, seconds)
    apply_proposal(fed, proposal)
    return round_metrics(fed, rnd, proposal, seconds)


def round_metrics(fed: Federation, rnd: int, proposal: Proposal,
                  seconds: dict[str, float]) -> RoundMetrics:
    """Evaluate the global model and describe the round."""
    with timed(seconds, "evaluate"):
        acc, loss, asr = evaluate_global(fed)
    ids, agg = proposal.ids, proposal.outcome.aggregate
    accepted_ids = [ids[i] for i in agg.accepted]
    return RoundMetrics(
        round=rnd, accuracy=acc, loss=loss, attack_success_rate=asr, seconds=seconds,
        proposers=len(ids), malicious_proposers=sum(1 for p in ids if p in fed.malicious),
        accepted=len(agg.accepted),
        malicious_accepted=sum(1 for p in accepted_ids if p in fed.malicious),
        rejected=[{"peer": ids[r.index], "reason": r.reason.value, "detail": r.detail}
                  for r in agg.rejected],
        revealed=dict(agg.revealed), extra=dict(proposal.outcome.extra),
        zero_trust=len(agg.zero_trust),
        malicious_zero_trust=sum(1 for i in agg.zero_trust if ids[i] in fed.malicious),
    )


def evaluate_global(fed: Federation) -> tuple[float, float, float | None]:
    """Test accuracy and loss of the global model, and the backdoor success rate if relevant."""
    set_flat_params(fed.model, fed.global_params)
    acc, loss = evaluate(fed.model, fed.data.x_test, fed.data.y_test)
    asr = None
    if fed.attack.attack is Attack.BACKDOOR:
        from phalanx.attacks.poisoning import attack_success_rate

        asr = attack_success_rate(fed.model, fed.data.x_test, fed.data.y_test,
                                  fed.attack.backdoor_target)
    return acc, loss, asr
