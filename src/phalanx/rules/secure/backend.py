"""The secure backend: a rule's clients and committee run end to end in one process (§2–3).

``SecureBackend.aggregate`` plays every client (encode, witnesses, seeded Shamir sharing, sealing
to each server, commitments; a second small upload after the post-commitment coin) and drives
the m servers of :class:`phalanx.mpc.committee.Committee` (one ``mpc.server.Server`` each),
which checks clients in batches of ``SERVER_BATCH``. Every party draws its own secrets from the
backend's ``SecretSource`` (the OS by default; ``SeededSecrets`` for reproducible tests).
The servers keep the part-1 uploads until the coin, as a real server stores
what it received (in memory, or in files above ``SPOOL_BYTES``); ``workers`` threads may run the
parties side by side. The result has the plaintext backend's shape.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import numpy as np

from phalanx.attacks.servers import ServerFault, ServerFaults
from phalanx.errors import AggregationError, ConfigError, ProtocolViolation
from phalanx.mpc.channel import LocalChannel, client_party
from phalanx.mpc.circuit import Circuit, ClientSecrets, contributes
from phalanx.mpc.committee import BundleStore, Committee, MemoryStore, Outcome, ShareTamper
from phalanx.mpc.committee_client import (
    Observer,
    commitment_of,
    context_of,
    make_bundles,
    make_masked_bundles,
    seal_bundles,
    tamper_share,
)
from phalanx.mpc.field import FieldVec
from phalanx.mpc.fixed import OVERFLOW_BITS
from phalanx.mpc.messages import PublicBlob, Scratch, SealedBundle, ShareBundle
from phalanx.mpc.parties import SecretSource
from phalanx.mpc.prg import Prg, derive
from phalanx.mpc.server import Opener
from phalanx.mpc.shamir import seeded_servers, validate_committee
from phalanx.mpc.stream import BytesReader, Reader
from phalanx.rules.base import (
    Aggregate,
    FloatVec,
    Rejection,
    Rule,
    RuleContext,
    check_shape_and_finite,
)
from phalanx.rules.cc import CenteredClipping
from phalanx.rules.fedavg import FedAvgNormBounded
from phalanx.rules.fltrust import FLTrust
from phalanx.rules.rsa import RobustStochasticAggregation
from phalanx.rules.secure.cc import CenteredClippingCircuit
from phalanx.rules.secure.fedavg_nb import make_circuit as fedavg_circuit
from phalanx.rules.secure.fltrust import FLTrustCircuit
from phalanx.rules.secure.parties import OsSecrets
from phalanx.rules.secure.rsa import SignCircuit
from phalanx.rules.secure.spool import SpoolStore
from phalanx.rules.secure.vector import NormCircuit, check_rows

SPOOL_BYTES = 1 << 30
"""Above this many bytes of stored part-1 uploads the simulated servers spool them (and the
clients their secrets) to files instead of holding them in memory. n = 100 at d = 10^6 and
(m, t) = (5, 1) would hold 3.1 GB (4.2 GB peak RSS for the secure part) and ran no faster in
memory than spooled on this VM (14.3 vs 13.5 s and 17.9 vs 17.8 s, side by side), where every
first touch of fresh memory is slow; it spools now (1.1 GB RSS)."""
SERVER_BATCH = 4
"""Clients a server checks in one fused pass (its accumulator, g_0 and the projection patterns
are read once per batch: 5.4 instead of 8 ms per client at d = 10^6 here)."""
CLIENT_STATE = -2
"""Store key (client, CLIENT_STATE, 0): a simulated client's secrets between parts 1 and 2."""


class Envelope(Protocol):
    """Sealing of bundles and keys to servers (``phalanx.net.envelope.X25519Envelope``)."""

    def seal(self, server: int, payload: bytes | memoryview, context: bytes,
             observe: Observer | None = None) -> bytes | memoryview:
        """Encrypt ``payload`` to ``server`` (a new object: ``payload`` may be a reused
        buffer), showing ``observe`` the sealed bytes piece by piece."""

    def open_stream(self, server: int, sealed: bytes | memoryview, context: bytes,
                    observe: Observer | None = None) -> Reader:
        """Open as ``server`` piece by piece (``mpc.stream.Reader``: authenticated by its
        ``verify`` once read)."""


    def reveal(self, server: int, context: bytes) -> bytes | None:
        """The ephemeral secret of the envelope sent to ``server`` under ``context`` (a
        dispute, §3.4), or None."""

    def open_revealed(self, server: int, sealed: bytes | memoryview, context: bytes,
                      observe: Observer | None = None, *, ephemeral: bytes) -> Reader:
        """Open an envelope to ``server`` with the ephemeral its sender revealed."""


Ephemerals = Callable[[bytes, bytes | memoryview], bytes]
EnvelopeFactory = Callable[[Sequence[bytes], Ephemerals], Envelope]
"""envelope(server_secrets, ephemeral): sealing to servers with these X25519 secrets, each
envelope with ``ephemeral(context, payload)``."""


class FramingEnvelope:
    """No encryption, only framing: for tests of the MPC logic, chosen explicitly. The
    simulator and the benchmark pass ``net.envelope.x25519_envelope``."""

    def __init__(self, server_secrets: Sequence[bytes], ephemeral: Ephemerals) -> None:
        self.m = len(server_secrets)

    def reveal(self, server: int, context: bytes) -> bytes | None:
        return b""

    def open_revealed(self, server: int, sealed: bytes | memoryview, context: bytes,
                      observe: Observer | None = None, *, ephemeral: bytes) -> BytesReader:
        return BytesReader(sealed, observe)

    def seal(self, server: int, payload: bytes | memoryview, context: bytes,
             observe: Observer | None = None) -> bytes:
        sealed = bytes(payload)
        if observe is not None:
            observe(memoryview(sealed))
        return sealed

    def open_stream(self, server: int, sealed: bytes | memoryview, context: bytes,
                    observe: Observer | None = None) -> BytesReader:
        return BytesReader(sealed, observe)


class ClientFault(Enum):
    """Client-side cheating the tests inject (a malicious client may do anything; these are the
    deviations the checks of protocol.md §3.2 must catch)."""

    NON_BINARY_BITS = "non-binary-bits"
    WRONG_TRUST_WEIGHT = "wrong-trust-weight"
    BAD_REMAINDER = "bad-remainder"
    INCONSISTENT_SHARING = "inconsistent-sharing"
    WRAP_AROUND = "wrap-around"
    #: one server gets a bundle other than the one committed to (one byte flipped)
    UNCOMMITTED_BUNDLE = "uncommitted-bundle"
    #: one server gets random bytes, committed to: the hash matches, the envelope does not open
    GARBAGE_BUNDLE = "garbage-bundle"
    #: the first vector one coordinate short in every bundle (shared and committed properly)
    SHORT_VECTOR = "short-vector"
    #: answers no dispute (never reveals an envelope's ephemeral)
    NO_REVEAL = "no-reveal"
    #: uploads part 1 again after the coin, with a wrap-around vector (uploads are immutable)
    RESEND_PART1 = "resend-part1"
    #: fltrust with the trust bit: claims b = 1 − [w > 0] (b = 1 with w = 0, or b = 0 with w > 0)
    FLIPPED_TRUST_BIT = "flipped-trust-bit"
    #: fltrust with the trust bit: claims b = 2 (not a bit)
    NON_BINARY_TRUST_BIT = "non-binary-trust-bit"


@dataclass(frozen=True, slots=True)
class SecureParams:
    """Committee and encoding parameters (validated: t ≥ 1, m ≥ 3t + 1, ...)."""

    m: int = 5
    t: int = 1
    frac_bits: int = 16
    #: projection rows k, drawn from the post-commitment coin (2^-k soundness per client and
    #: try: the last client to commit can grind the coin, so at least 64; protocol.md v1.1)
    rows: int = 64
    #: "seeded" (protocol.md §2: t seeds + m − t explicit share vectors) or "masked"
    #: (one public masked vector + C(m, t) keys, phalanx.mpc.masked: meets the upload bound)
    sharing: str = "seeded"
    #: re-randomization of degree-2t openings: "cdi" (PRZS, C(m − 1, t)·t expansions per
    #: server), "dealt" (member-dealt zero sharings, ``mpc.dealt``: polynomial in m) or "auto"
    #: (the cheaper one by ``mpc.dealt.choose_scheme``)
    zero: str = "auto"
    #: fltrust only: reveal one bit per client, [trust weight > 0], so that a valid input with
    #: weight 0 is neither accepted (paid) nor rejected (docs/economics.md, "fltrust trust bit")
    trust_bit: bool = False

    def __post_init__(self) -> None:
        validate_committee(self.m, self.t)
        if not 4 <= self.frac_bits <= 24:
            raise ConfigError(f"frac_bits={self.frac_bits} must be in [4, 24]")
        check_rows(self.rows)
        if self.sharing not in ("seeded", "masked"):
            raise ConfigError(f"sharing={self.sharing!r} must be 'seeded' or 'masked'")
        if self.zero not in ("cdi", "dealt", "auto"):
            raise ConfigError(f"zero={self.zero!r} must be 'cdi', 'dealt' or 'auto'")
        if not isinstance(self.trust_bit, bool):
            raise ConfigError(f"trust_bit={self.trust_bit!r} must be a bool")


@dataclass(frozen=True, slots=True)
class SecureResult:
    """What the committee reports: the aggregate, identified cheaters, abort, statistics."""

    aggregate: Aggregate
    cheating_servers: tuple[int, ...] = ()
    aborted: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def make_circuit(rule: Rule, ctx: RuleContext, params: SecureParams, n: int) -> Circuit:
    """The secure form of a rule (ConfigError for rules without one)."""
    if not rule.secure_compatible:
        raise ConfigError(f"rule {rule.name!r} has no secure form")
    rule.validate_context(ctx)
    kw = {"frac_bits": params.frac_bits, "rows": params.rows}
    if params.trust_bit and not isinstance(rule, FLTrust):
        raise ConfigError(f"trust_bit=True applies to fltrust only, not rule {rule.name!r}")
    if isinstance(rule, FLTrust):
        circuit = FLTrustCircuit(rule, ctx, **kw, trust_bit=params.trust_bit)
        if n * 2 ** (params.frac_bits + 1) * 2 * circuit.T >= 1 << OVERFLOW_BITS:
            raise ConfigError(f"n={n} clients at frac_bits={params.frac_bits} may overflow "
                              f"2^{OVERFLOW_BITS} in Σ w_i x_i; lower frac_bits")
        return circuit
    if isinstance(rule, FedAvgNormBounded):
        return fedavg_circuit(rule, ctx, **kw)
    if isinstance(rule, CenteredClipping):
        return CenteredClippingCircuit(rule, ctx, **kw)
    if isinstance(rule, RobustStochasticAggregation):
        return SignCircuit(rule, ctx)
    raise ConfigError(f"rule {rule.name!r} is marked secure but has no circuit")


class SecureBackend:
    """Runs a rule under MPC: ``aggregate`` mirrors ``Rule.aggregate`` of the plaintext backend."""

    def __init__(self, params: SecureParams, *, envelope: EnvelopeFactory,
                 clock: Callable[[], float] = time.thread_time, spool: bool | None = None,
                 spool_dir: str | None = None, workers: int = 1,
                 secrets: SecretSource | None = None) -> None:
        """``envelope`` seals bundles and keys to the servers: pass
        ``phalanx.net.envelope.x25519_envelope`` (real encryption; ``rules`` may not import
        ``net``, so there is no default) or, where secrecy is not under test, ``FramingEnvelope``.
        ``clock`` times the parties' work (default: CPU time of this thread, which every
        kernel runs on, so other processes' load does not inflate the per-party numbers).
        ``spool``: keep the servers' stored uploads in files under ``spool_dir`` (True), in
        memory (False), or in files only when they exceed ``SPOOL_BYTES`` (None).
        ``workers``: threads that run the simulated parties side by side (clients in batches,
        the servers' local work per client); results do not depend on it.
        ``secrets``: where every party draws its secrets (sharing polynomials, PRZS keys,
        envelope keys and ephemerals, decoding coins): the OS by default; a
        ``mpc.parties.SeededSecrets`` makes runs reproducible (and their secrets not secret)."""
        if not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers={workers!r} must be an int >= 1")
        self.params = params
        self.workers = workers
        self.spool, self.spool_dir = spool, spool_dir
        self.envelope: EnvelopeFactory = envelope
        self.clock = clock
        self.secrets: SecretSource = secrets if secrets is not None else OsSecrets()

    def aggregate(
        self,
        rule: Rule,
        prepared_inputs: Sequence[FloatVec],
        ctx: RuleContext,
        seed: bytes,
        client_ids: Sequence[int] | None = None,
        server_faults: ShareTamper | Sequence[ServerFault] | None = None,
        client_faults: Mapping[int, ClientFault] | None = None,
        session: bytes | None = None,
    ) -> SecureResult:
        """One secure aggregation; ``client_faults`` maps input index → injected cheating and
        ``server_faults`` is a ``ServerFaults`` model or a list of ``ServerFault``. ``seed``
        is the round's public beacon (the coins hash it with the commitments; nothing secret
        derives from it); ``session`` binds every envelope to the task and round (default:
        derived from ``seed``)."""
        tamper: ShareTamper | None = (ServerFaults(server_faults)
                                      if isinstance(server_faults, (list, tuple))
                                      else server_faults)  # type: ignore[assignment]
        if len(seed) != 32:
            raise ConfigError(f"seed has {len(seed)} bytes, expected 32")
        n = len(prepared_inputs)
        ids = list(client_ids) if client_ids is not None else list(range(n))
        if len(ids) != n or len(set(ids)) != n:
            raise ConfigError(f"client_ids must be {n} distinct ids, got {ids}")
        if not all(isinstance(c, int) and 0 <= c < 1 << 32 for c in ids):
            raise ConfigError(f"client_ids must be ints in [0, 2^32), got {ids}")
        circuit = make_circuit(rule, ctx, self.params, n)
        store = self._store(n, ctx.dim * len(circuit.vector_labels))
        pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None
        session = session if session is not None else derive(seed, "session")
        try:
            run = _Run(self.params, rule, ctx, seed, circuit, dict(client_faults or {}), tamper,
                       self.envelope, self.secrets, session, self.clock, store, pool)
            return run.execute(prepared_inputs, ids)
        finally:
            if pool is not None:
                pool.shutdown()
            if isinstance(store, SpoolStore):
                store.close()

    def _store(self, n: int, dim: int) -> BundleStore:
        """Files (``SpoolStore``) when the round's part-1 uploads would exceed ``SPOOL_BYTES``
        in memory, or when ``spool`` says so; a dict otherwise (``dim``: the coordinates a
        client shares in part 1, over all its vectors: rsa shares two)."""
        # the sealed part-1 uploads: m − t packed share vectors per client, or one public blob
        copies = self.params.m - self.params.t if self.params.sharing == "seeded" else 1
        held = n * copies * dim * 61 // 8
        if self.spool is True or (self.spool is None and held > SPOOL_BYTES):
            return SpoolStore(self.spool_dir)
        return MemoryStore()


class _Run:
    """One aggregation's state (keys, committee, timings)."""

    def __init__(self, params: SecureParams, rule: Rule, ctx: RuleContext, seed: bytes,
                 circuit: Circuit, faults: dict[int, ClientFault],
                 tamper: ShareTamper | None, envelope: EnvelopeFactory,
                 secrets: SecretSource, session: bytes,
                 clock: Callable[[], float], store: BundleStore,
                 pool: ThreadPoolExecutor | None) -> None:
        self.p, self.rule, self.ctx, self.seed = params, rule, ctx, seed
        self.sec, self.session = secrets, session
        self.store, self.pool = store, pool
        self._local = threading.local()
        #: clients' secrets between parts 1 and 2 (in the spool when the store is one)
        self.states: dict[int, ClientSecrets] = {}
        self.circuit, self.faults = circuit, faults
        # each server's own long-term X25519 secret; each envelope its own ephemeral
        self.envelope = envelope([secrets.token(f"server:{j}", "x25519", session)
                                  for j in range(params.m)], self.ephemeral)
        self.channel = LocalChannel()
        self.committee = Committee(circuit, m=params.m, t=params.t, channel=self.channel,
                                   sealer=self.envelope.seal,
                                   streamer=self.envelope.open_stream,
                                   session=session, beacon=seed, secrets=secrets,
                                   revealer=self.reveal, clock=clock,
                                   tamper=tamper, store=store,
                                   run_parallel=None if pool is None else (
                                       lambda fn, items: list(pool.map(fn, items))),
                                   run_local=None if pool is None else self.run_local,
                                   defer_rollbacks=pool is not None, zero=params.zero)
        #: one coordinating thread per round: it hands a batch's servers to the pool
        self.coordinator = ThreadPoolExecutor(1) if pool is not None else None
        self.clock = clock
        self.index_of: dict[int, int] = {}
        #: messages every server refused (immutable uploads), as the stats report them
        self.violations: list[dict[str, Any]] = []
        self.client_s: dict[str, float] = {"witness": 0.0, "share": 0.0, "seal": 0.0}

    def ephemeral(self, context: bytes, payload: bytes | memoryview) -> bytes:
        """A client's ephemeral for one envelope: from its own secrets (with seeded secrets,
        bound to the context and the payload's hash, so no key seals two plaintexts)."""
        if not self.sec.reproducible:
            return self.sec.token("client", "ephemeral")
        return self.sec.token("client", "ephemeral", context, commitment_of(payload))

    def reveal(self, client: int, server: int,
               part: int) -> tuple[bytes | memoryview | None, Opener] | None:
        """The client's answer to a dispute (§3.4): it re-sends its envelope to ``server``
        (the simulation takes the bytes the server holds, which are what the client
        delivered) and reveals that envelope's ephemeral secret."""
        context = context_of(self.session, client, server, part)
        eph = self.envelope.reveal(server, context)
        if eph is None or self.faults.get(self.index_of[client]) is ClientFault.NO_REVEAL:
            return None
        sealed = (self.store.get((client, server, 1)) if part == 1
                  else self.committee.servers[server].part2.get(client))

        def opener(sealed: bytes | memoryview, context: bytes,
                   observe: Observer | None) -> Reader:
            return self.envelope.open_revealed(server, sealed, context, observe, ephemeral=eph)

        return sealed, opener

    def run_local(self, work: Callable[[], list[Any]]) -> Callable[[], list[Any]]:
        """Start a batch's local work on the coordinating thread; return how to wait."""
        assert self.coordinator is not None
        return self.coordinator.submit(work).result

    def scratch(self) -> Scratch:
        """This thread's encoding buffer (each worker thread has its own)."""
        got: Scratch | None = getattr(self._local, "scratch", None)
        if got is None:
            got = self._local.scratch = Scratch()
        return got

    def secrets(self, idx: int, cid: int, vec: FloatVec) -> tuple[ClientSecrets, Prg]:
        prg = self.sec.prg(f"client:{cid}", "sharing", self.session)
        fault = self.faults.get(idx)
        c = self.circuit
        if fault is ClientFault.WRAP_AROUND:
            if not isinstance(c, NormCircuit):
                raise ConfigError(f"{fault} needs a rule on real vectors, not {self.rule.name}")
            secrets = c.witness(c.wrap_around(c.encode(vec, prg)), prg)
        else:
            secrets = c.client_secrets(vec, prg)
        if fault is ClientFault.NON_BINARY_BITS:
            secrets = c.non_binary(secrets)  # type: ignore[attr-defined]
        elif fault in (ClientFault.WRONG_TRUST_WEIGHT, ClientFault.BAD_REMAINDER):
            if not isinstance(c, FLTrustCircuit):
                raise ConfigError(f"{fault} applies to fltrust only, not {self.rule.name}")
            deltas = (1, 0) if fault is ClientFault.WRONG_TRUST_WEIGHT else (-1, c.gp)
            secrets = c.tamper_weight(secrets, w_delta=deltas[0], r_delta=deltas[1])
        elif fault in (ClientFault.FLIPPED_TRUST_BIT, ClientFault.NON_BINARY_TRUST_BIT):
            if not isinstance(c, FLTrustCircuit) or not c.trust_bit:
                raise ConfigError(f"{fault} needs fltrust with trust_bit=True")
            bit = 1 - c.trust_bit_of(secrets) if fault is ClientFault.FLIPPED_TRUST_BIT else 2
            secrets = c.tamper_weight(secrets, bit=bit)
        return secrets, prg

    def bundles(self, cid: int, part: int, items: dict[str, FieldVec],
                prg: Prg) -> tuple[list[ShareBundle], PublicBlob | None]:
        if self.p.sharing == "masked":
            return make_masked_bundles(cid, part, items, m=self.p.m, t=self.p.t, prg=prg)
        return make_bundles(cid, part, items, m=self.p.m, t=self.p.t, prg=prg,
                            scratch=self.scratch()), None

    def part1(self, idx: int, cid: int, inputs: Sequence[FloatVec]) -> Rejection | tuple[
            dict[int, SealedBundle], PublicBlob | None, ClientSecrets, dict[str, float]]:
        """Client ``cid``'s first upload (run on any worker thread; returns its CPU times), or
        its rejection when its input has the wrong shape or is not finite."""
        vec = inputs[idx]
        verdict = check_shape_and_finite(np.asarray(vec), self.ctx)
        if verdict is not None:
            return Rejection(idx, verdict.reason, verdict.detail)
        t0 = self.clock()
        secrets, prg = self.secrets(idx, cid, vec)
        t1 = self.clock()
        # the scalars first: a server reads them before it streams the long vectors
        items = {"s1": secrets.scalars,
                 **dict(zip(self.circuit.vector_labels, secrets.vectors, strict=True))}
        if self.faults.get(idx) is ClientFault.SHORT_VECTOR:
            first = self.circuit.vector_labels[0]
            items[first] = items[first][:-1]
        bundles, blob = self.bundles(cid, 1, items, prg)
        if self.faults.get(idx) is ClientFault.INCONSISTENT_SHARING:
            seeded = seeded_servers(self.p.m, self.p.t, cid)
            target = next(j for j in range(self.p.m) if j not in seeded)
            bundles = tamper_share(bundles, target, 0)
        t2 = self.clock()
        sealed = seal_bundles(bundles, self.envelope.seal, self.session, self.scratch())
        times = {"witness": t1 - t0, "share": t2 - t1, "seal": self.clock() - t2}
        if self.faults.get(idx) in (ClientFault.UNCOMMITTED_BUNDLE, ClientFault.GARBAGE_BUNDLE):
            sealed = self.bad_bundle(idx, cid, sealed)
        return sealed, blob, secrets, times

    def resend_part1(self, idx: int, cid: int, inputs: Sequence[FloatVec]) -> None:
        """Client fault: after coin1, upload a wrap-around part 1 in place of the committed one
        (with fresh commitments). Every server refuses it (uploads are immutable); the refusal
        is recorded, and the committed upload stands."""
        self.faults[idx] = ClientFault.WRAP_AROUND
        got = self.part1(idx, cid, inputs)
        self.faults[idx] = ClientFault.RESEND_PART1
        assert not isinstance(got, Rejection)
        sealed, blob, _, _ = got
        try:
            self.committee.receive(cid, sealed, blob)
        except ProtocolViolation as e:
            self.violations.append({"client": idx, "reason": e.reason.value, "detail": e.detail})

    def bad_bundle(self, idx: int, cid: int,
                   sealed: dict[int, SealedBundle]) -> dict[int, SealedBundle]:
        """Client faults on the delivered bytes of server (cid + 1) mod m's bundle."""
        target = (cid + 1) % self.p.m
        b = sealed[target]
        if self.faults[idx] is ClientFault.UNCOMMITTED_BUNDLE:
            flipped = bytearray(b.sealed)
            flipped[len(flipped) // 2] ^= 1
            data, commitment = bytes(flipped), b.commitment
        else:
            data = self.sec.prg(f"client:{cid}", "garbage").random_bytes(len(b.sealed))
            commitment = commitment_of(data)
        return {**sealed, target: SealedBundle(b.client, b.server, b.part, data, commitment)}

    def part2(self, cid: int, secrets: ClientSecrets, coin1: bytes) -> tuple[
            dict[int, SealedBundle], PublicBlob | None, dict[str, float]]:
        """Client ``cid``'s second upload, after the coin (any worker thread)."""
        t0 = self.clock()
        response = self.circuit.client_response(secrets, coin1)
        t1 = self.clock()
        bundles, blob = self.bundles(cid, 2, {"s2": response},
                                     self.sec.prg(f"client:{cid}", "sharing-2", self.session))
        t2 = self.clock()
        sealed = seal_bundles(bundles, self.envelope.seal, self.session, self.scratch())
        times = {"witness": t1 - t0, "share": t2 - t1, "seal": self.clock() - t2}
        return sealed, blob, times

    def keep_state(self, cid: int, secrets: ClientSecrets) -> None:
        """Client ``cid`` keeps its secrets for part 2: in memory, or in the spool when the
        servers spool their uploads (then the clients' vectors would not fit either)."""
        if isinstance(self.store, SpoolStore):
            self.store.put((cid, CLIENT_STATE, 0), pickle.dumps(secrets, protocol=5))
        else:
            self.states[cid] = secrets

    def state_of(self, cid: int) -> ClientSecrets:
        """Client ``cid``'s secrets from part 1, taken out of memory or the spool."""
        if cid in self.states:
            return self.states.pop(cid)
        raw = self.store.get((cid, CLIENT_STATE, 0))
        if raw is None:
            raise AggregationError(f"client {cid}'s state is missing from the store")
        secrets: ClientSecrets = pickle.loads(raw)  # noqa: S301 - our own bytes
        del raw
        self.store.discard((cid, CLIENT_STATE, 0))
        return secrets

    def in_batches(self, fn: Callable[[int], Any], items: Sequence[int]) -> Iterator[Any]:
        """fn over items, results in order; with workers, a sliding window of twice as many
        calls in flight as there are threads (no barrier between groups; bounded memory)."""
        if self.pool is None:
            yield from (fn(i) for i in items)
            return
        window = 2 * self.pool._max_workers  # noqa: SLF001 - the pool's own width
        pending: deque[Future[Any]] = deque()
        for i in items:
            pending.append(self.pool.submit(fn, i))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def add_client_times(self, times: Mapping[str, float]) -> None:
        for key, dt in times.items():
            self.client_s[key] += dt

    def execute(self, inputs: Sequence[FloatVec], ids: list[int]) -> SecureResult:
        pre: list[Rejection] = []
        live: list[int] = []
        phase: dict[str, float] = {}
        t0 = time.perf_counter()
        self.index_of = {cid: idx for idx, cid in enumerate(ids)}
        self.committee.setup()
        # part 1 (a client whose input has the wrong shape or is not finite uploads nothing);
        # each client keeps its secrets for part 2
        everyone = list(range(len(inputs)))
        for idx, got in zip(everyone, self.in_batches(lambda i: self.part1(i, ids[i], inputs),
                                                      everyone), strict=True):
            if isinstance(got, Rejection):
                pre.append(got)
                continue
            live.append(idx)
            sealed, blob, secrets, times = got
            self.add_client_times(times)
            self.committee.receive(ids[idx], sealed, blob)
            self.keep_state(ids[idx], secrets)
        coin1 = self.committee.coin(1)
        for idx in live:  # a client that tries to replace its part 1 once it knows the coin
            if self.faults.get(idx) is ClientFault.RESEND_PART1:
                self.resend_part1(idx, ids[idx], inputs)
        for idx, (sealed, blob, times) in zip(
                live, self.in_batches(lambda i: self.part2(ids[i], self.state_of(ids[i]),
                                                           coin1), live), strict=True):
            self.add_client_times(times)
            self.committee.receive(ids[idx], sealed, blob)
        coin2 = self.committee.coin(2, coin1)
        upload = {idx: self.channel.bytes_sent[client_party(ids[idx])] for idx in live}
        phase["clients"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        try:
            self.committee.begin([ids[i] for i in live], coin1, coin2)
            batches = [[ids[i] for i in live[k:k + SERVER_BATCH]]
                       for k in range(0, len(live), SERVER_BATCH)]
            if self.pool is None:
                for batch in batches:
                    self.committee.process_batch(batch)
            elif batches:  # the next batch's local work overlaps this one's openings
                pending = self.committee.start_batch(batches[0], 0)
                for k in range(len(batches)):
                    nxt = (self.committee.start_batch(batches[k + 1],
                                                      SERVER_BATCH * ((k + 1) % 2))
                           if k + 1 < len(batches) else None)
                    self.committee.finish_batch(pending)
                    if nxt is not None:
                        pending = nxt
            outcome = self.committee.finish()
        except AggregationError as e:
            outcome = self.committee.aborted(str(e))
        finally:
            if self.coordinator is not None:
                self.coordinator.shutdown()
        phase["committee"] = time.perf_counter() - t1
        return self.result(outcome, pre, ids, live, upload, phase)

    def result(self, outcome: Outcome, pre: list[Rejection], ids: list[int], live: list[int],
               upload: dict[int, int], phase: dict[str, float]) -> SecureResult:
        index_of = {cid: idx for idx, cid in enumerate(ids)}
        rejected = list(pre)
        accepted, zero_trust = [], []
        for v in outcome.verdicts:
            if v.reason is None and contributes(self.circuit, v.revealed):
                accepted.append(index_of[v.client])
            elif v.reason is None:
                zero_trust.append(index_of[v.client])
            else:
                rejected.append(Rejection(index_of[v.client], v.reason, v.detail))
        n_live = max(1, len(live))
        stats: dict[str, Any] = {
            "bytes_sent": dict(self.channel.bytes_sent),
            "bytes_received": dict(self.channel.bytes_received),
            "rounds": self.channel.rounds,
            "messages": self.channel.messages,
            "server_s": list(outcome.server_seconds),
            "server_breakdown_s": [dict(b) for b in outcome.breakdown],
            "client_s": {k: v / n_live for k, v in self.client_s.items()},
            "phase_s": phase,
            "upload_bytes_per_client": sum(upload.values()) / n_live,
            "dropped_servers": list(outcome.dropped),
            "spooled": isinstance(self.store, SpoolStore),
            "protocol_violations": list(self.violations),
            "server_evidence": {str(j): how for j, how in outcome.evidence.items()},
            "reproducible_secrets": self.sec.reproducible,
        }
        if outcome.aborted is not None or outcome.vector is None:
            agg = Aggregate(np.zeros(self.ctx.dim, np.float32), (),
                            tuple(sorted(rejected, key=lambda r: r.index)))
            return SecureResult(agg, outcome.cheating, outcome.aborted or "committee-abort",
                                stats)
        revealed = outcome.revealed if accepted or zero_trust else {}
        agg = Aggregate(outcome.vector, tuple(sorted(accepted)),
                        tuple(sorted(rejected, key=lambda r: r.index)), revealed,
                        tuple(sorted(zero_trust)))
        return SecureResult(agg, outcome.cheating, None, stats)


def error_bound(rule: Rule, accepted: Sequence[FloatVec], ctx: RuleContext,
                frac_bits: int) -> float:
    """The largest |secure − plaintext| per coordinate this backend promises (docs/mpc.md).

    fedavg-nb, cc: one rounding step 2^-f (stochastic rounding of each input, averaged) plus
    float32 rounding of the output. rsa: exact. fltrust, with s = ‖g_0‖/ν, D = Σ w_i:
    s·2^-f·(1 + 4n·max|x|/D) — the inputs' rounding plus each weight's error of at most 2
    steps (floor of u/G' and of G'), weighted by how far an input sits from the mean.
    """
    step = 2.0**-frac_bits
    if isinstance(rule, RobustStochasticAggregation) or not accepted:
        return 0.0
    # streamed over the inputs: no n × d float64 copy
    x_max = max(float(np.abs(v).max()) for v in accepted)
    if isinstance(rule, FLTrust):
        g0 = rule.normalized_reference(ctx).astype(np.float64)
        g0_sq = max(float(g0 @ g0), 1e-30)
        w = [max(float(np.asarray(v, np.float64) @ g0), 0.0) / g0_sq for v in accepted]
        total = float(sum(w))
        if total <= 0.0:
            return 0.0
        s = float(np.linalg.norm(rule.reference_of(ctx).astype(np.float64))) / rule.nu
        out = np.zeros(ctx.dim, np.float64)
        for wi, v in zip(w, accepted, strict=True):
            out += wi * np.asarray(v, np.float64)
        out_max = float(np.abs(out).max()) * s / total
        return s * step * (1 + 4 * len(accepted) * x_max / total) + 1e-6 * out_max
    center = float(np.abs(ctx.reference).max()) if ctx.reference is not None else 0.0
    return step + 1e-6 * (x_max + center)
