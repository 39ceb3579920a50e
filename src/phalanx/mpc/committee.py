"""The in-process committee driver: a loop over m :class:`~phalanx.mpc.server.Server` objects
exchanging messages through a Channel (protocol.md §3; benchmarks and tests).

Each server holds only its own state and secrets (``mpc.server``); the driver moves what they
send and asks the client to answer disputes. Order of a round (§3.2–3.4):
1. ``setup``: PRZS keys — the first member of every set A of m − t servers draws k_A from its
   own secrets and seals it to the other members.
2. ``receive``: clients' uploads arrive; every server keeps its bundle with the client's list of
   commitments (immutable: a second upload of a part is refused and named).
3. ``coin``: coin1 = H(session, beacon, the clients' part-1 roots) fixes the projection rows;
   coin2 = H(coin1, part-2 roots) every check coefficient (``mpc.coins``).
4. ``process_batch``: every server runs the fused pass over the batch, then client by client:
   a server's claim that an upload does not open is tested against the envelope the client
   re-sends with its ephemeral revealed (the false claimant is identified, or the client
   rejected); the servers open the consistency value (degree t, RS-corrected; a disagreeing
   server is judged by recomputing its value from its committed bundle, revealed the same way)
   and the check values (degree 2t, re-randomized). Each receiver decodes with its own coin.
5. ``finish``: the servers open the aggregate shares and the circuit decodes the output.
A server caught by RS correction is reported and treated as an erasure from then on. An error
that is detected but not correctable aborts with "committee-abort" and says why no server can
be named (docs/protocol.md, "Identified abort").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np

from phalanx.errors import AggregationError, ConfigError, ReconstructionError, Reject
from phalanx.mpc.channel import Channel, client_party, server_party
from phalanx.mpc.circuit import Circuit, ClientShares, LocalResult, check_width
from phalanx.mpc.coins import compute_coin, compute_root
from phalanx.mpc.committee_client import Observer, Sealer, commitment_of
from phalanx.mpc.dealt import SCHEMES, blame, check_coin, choose_scheme
from phalanx.mpc.field import FieldVec
from phalanx.mpc.messages import (
    OpeningKind,
    PublicBlob,
    SealedBundle,
    as_field,
    pack61,
    unpack61,
)
from phalanx.mpc.parties import SecretSource
from phalanx.mpc.rs import Opened
from phalanx.mpc.server import (
    BundleStore,
    Failure,
    Local,
    MemoryStore,
    Opener,
    Server,
    opening_kind_charge,
)
from phalanx.mpc.shamir import validate_committee
from phalanx.mpc.stream import Reader

__all__ = ["ABORT", "BundleStore", "Committee", "MemoryStore", "Outcome", "PendingBatch",
           "Revealer", "ShareTamper", "Verdict"]

Clock = Callable[[], float]
ParallelMap = Callable[[Callable[[int], Any], Sequence[int]], list[Any]]
Streamer = Callable[[int, bytes | memoryview, bytes, Observer | None], Reader]
"""open_stream(server, sealed, context, observe): the envelope as a ``stream.Reader`` (decrypted
piece by piece as it is read, authenticated by ``verify``); ``observe`` sees its pieces."""
Revealer = Callable[[int, int, int], tuple[bytes | memoryview | None, Opener] | None]
"""reveal(client, server, part): the client re-sends its envelope to ``server`` for ``part``
with an opener built from the ephemeral secret it reveals (§3.4 dispute), or None."""
ABORT = "committee-abort"
_P = np.uint64((1 << 61) - 1)


class ShareTamper(Protocol):
    """Server misbehaviour (models live in ``phalanx.attacks.servers``)."""

    def faulty(self) -> frozenset[int]:
        """Servers that may deviate (their own conclusions are ignored)."""

    def tamper(
        self, server: int, kind: OpeningKind, receiver: int, shares: FieldVec
    ) -> FieldVec | None:
        """What ``server`` sends ``receiver`` instead of ``shares``; None sends nothing."""

    def false_claim(self, server: int, client: int) -> bool:
        """Whether ``server`` claims the client's upload does not open although it does."""


RunLocal = Callable[[Callable[[], list[Any]]], Callable[[], list[Any]]]
"""Starts a batch's local work; returns a function that waits for its result."""


def _in_turn(fn: Callable[[int], Any], items: Sequence[int]) -> list[Any]:
    return [fn(i) for i in items]


def _at_once(work: Callable[[], list[Any]]) -> Callable[[], list[Any]]:
    result = work()
    return lambda: result


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """A batch whose local work has started (``Committee.start_batch``)."""

    clients: tuple[int, ...]
    active: tuple[int, ...]
    wait: Callable[[], list[Any]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The committee's decision on one client; ``revealed``: its values opened with the
    checks (``Circuit.client_reveals``, e.g. fltrust's trust bit), when it passed them."""

    client: int
    reason: Reject | None
    detail: str = ""
    revealed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of a round as the honest servers see it."""

    vector: np.ndarray[Any, np.dtype[np.float32]] | None
    revealed: dict[str, float]
    verdicts: tuple[Verdict, ...]
    cheating: tuple[int, ...]
    dropped: tuple[int, ...]
    aborted: str | None
    server_seconds: tuple[float, ...]
    breakdown: tuple[dict[str, float], ...] = ()
    #: per identified server, how it was caught (evidence summary)
    evidence: dict[int, str] = field(default_factory=dict)


class Committee:
    """m servers running one secure aggregation, each its own :class:`Server`."""

    def __init__(
        self,
        circuit: Circuit,
        *,
        m: int,
        t: int,
        channel: Channel,
        sealer: Sealer,
        streamer: Streamer,
        session: bytes,
        beacon: bytes,
        secrets: SecretSource,
        revealer: Revealer | None = None,
        clock: Clock = lambda: 0.0,
        tamper: ShareTamper | None = None,
        store: BundleStore | None = None,
        run_parallel: ParallelMap | None = None,
        run_local: RunLocal | None = None,
        defer_rollbacks: bool = False,
        zero: str = "cdi",
    ) -> None:
        validate_committee(m, t)
        if zero not in (*SCHEMES, "auto"):
            raise ConfigError(f"zero={zero!r} must be 'cdi', 'dealt' or 'auto'")
        #: how degree-2t openings are re-randomized (``mpc.dealt.choose_scheme`` for "auto")
        self.zero = choose_scheme(m, t) if zero == "auto" else zero
        #: maps a server's local work over the servers (in order); the simulation passes a
        #: thread pool's map (every kernel releases the GIL), the default runs them in turn
        self.run_parallel: ParallelMap = run_parallel or _in_turn
        #: starts a batch's local work and returns how to wait for it (default: now, in turn)
        self.run_local: RunLocal = run_local or _at_once
        #: rollbacks wait for ``finish`` (set when batches overlap)
        self.defer_rollbacks = defer_rollbacks
        self._deferred: list[tuple[int, ClientShares, LocalResult]] = []
        self.store: BundleStore = store if store is not None else MemoryStore()
        self.circuit, self.m, self.t = circuit, m, t
        self.channel, self.session, self.beacon = channel, session, beacon
        self.revealer, self.clock, self.tamper = revealer, clock, tamper
        self.faulty = tamper.faulty() if tamper is not None else frozenset()
        self.servers = [Server(j, circuit, m=m, t=t, session=session, secrets=secrets,
                               sealer=sealer, opener=partial(streamer, j), store=self.store,
                               clock=clock, zero=self.zero)
                        for j in range(m)]
        self.roots: dict[int, dict[int, bytes]] = {1: {}, 2: {}}
        self.cheaters: set[int] = set()
        #: clients whose public data already condemns them (a blob that is not the committed one)
        self.bad_clients: dict[int, str] = {}
        self.evidence: dict[int, str] = {}
        self.silent: set[int] = set()
        self.accepted: list[int] = []
        self.verdicts: list[Verdict] = []

    # -- 1. set-up --------------------------------------------------------------------------
    def setup(self) -> None:
        """Distribute the PRZS keys: A's first member draws k_A and seals it to the others."""
        for s in self.servers:
            for r, sealed in s.deal_przs():
                self.channel.send(server_party(s.j), server_party(r), sealed)
        self.channel.end_round()
        for s in self.servers:
            for sender, sealed in self.channel.receive(server_party(s.j)):
                s.receive_przs(int(sender.split(":")[1]), sealed)

    # -- 2. uploads -------------------------------------------------------------------------
    def receive(self, client: int, bundles: Mapping[int, SealedBundle],
                blob: PublicBlob | None = None) -> None:
        """Deliver a client's sealed bundles of one part (and its public masked blob, put once
        into the content-addressed store and fetched by every server). Every server checks the
        blob against the client's commitment — public data, so the simulation hashes it once
        and charges each server; a blob that is not the committed one rejects its client.
        ProtocolViolation(DUPLICATE) when the client already uploaded this part."""
        part = next(iter(bundles.values())).part if bundles else (blob.part if blob else 1)
        commitments = [bundles[j].commitment if j in bundles else bytes(32)
                       for j in range(self.m)]
        data: bytes | memoryview | None = None
        dt = 0.0
        if blob is not None:
            commitments.append(blob.commitment)
            t0 = self.clock()
            data = blob.data if commitment_of(blob.data) == blob.commitment else None
            dt = self.clock() - t0
            if data is None:
                self.bad_clients.setdefault(client, f"part-{part} public blob is not the "
                                                    "committed one")
            self.channel.send(client_party(client), "store", blob.data)
            self.channel.receive("store")
        for s in self.servers:
            sealed = bundles[s.j].sealed if s.j in bundles else None
            if sealed is not None:
                self.channel.send(client_party(client), server_party(s.j), sealed)
                self.channel.receive(server_party(s.j))
            if blob is not None:
                self.channel.send("store", server_party(s.j), blob.data)
                self.channel.receive(server_party(s.j))
                s.charge("transport", dt)
            s.accept_upload(client, part, commitments, sealed, data, blob_checked=True)
        self.roots[part][client] = compute_root(commitments)

    def coin(self, part: int, previous: bytes = b"") -> bytes:
        """The public coin after every part-``part`` root (``mpc.coins.compute_coin``)."""
        return compute_coin(self.session, self.beacon, part, self.roots[part].items(), previous)

    # -- 3. public randomness -----------------------------------------------------------------
    def begin(self, clients: Sequence[int], coin1: bytes, coin2: bytes) -> None:
        """Fix the round's public randomness and every server's PRZS masks of the checks."""
        self.circuit.begin(coin1, coin2)
        for s in self.servers:
            s.begin(clients)
        if self.zero == "dealt":
            length = len(clients) * check_width(self.circuit)
            self.deal_zeros("checks", length)
            for s in self.servers:
                if "checks" in s.zero_masks:
                    s.check_zero = s.zero_masks.pop("checks")

    # -- 3b. dealt zero sharings (mpc.dealt) --------------------------------------------------
    def deal_zeros(self, label: str, length: int) -> None:
        """Every active member deals zero sharings of ``length`` coordinates, they are checked
        with a coin drawn after every commitment, and each member extracts its masks
        (``Server.zero_masks[label]``). A failed check names the dealer, or the members that
        lied about it (protocol.md §3.4); they are excluded and the members deal again."""
        while not self._deal_zeros_once(label, length):
            if len(self.cheaters) > self.t:
                raise AggregationError(f"{ABORT}: more than t={self.t} servers identified")

    def _deal_zeros_once(self, label: str, length: int) -> bool:
        """One dealing and its check; False when someone was identified (deal again)."""
        active = self._active()
        commits: dict[int, dict[int, bytes]] = {}
        for i in active:
            commits[i], sealed = self.servers[i].deal_zero(label, length)
            public = b"".join(commits[i][j] for j in range(self.m))
            for r, env in sealed:
                if r in active:
                    self.channel.send(server_party(i), server_party(r), env)
                    self.channel.send(server_party(i), server_party(r), public)
        self.channel.end_round()
        inbox = {r: self.channel.receive(server_party(r)) for r in active}
        for r in active:
            got = {int(sender.split(":")[1]): payload for sender, payload in inbox[r][::2]}
            for i in active:
                if i != r and not self.servers[r].receive_zero(label, length, i, got.get(i),
                                                               commits[i].get(r)):
                    if not self._complaint(label, length, dealer=i, receiver=r,
                                           committed=commits[i].get(r)):
                        return False
        coin = check_coin(self.session, label, [commits[i] for i in active])
        values = {j: self.servers[j].zero_check_values(label, coin) for j in active}
        # a server's check values travel like its CHECKS shares (what a tamper model alters)
        views = self._exchange(OpeningKind.CHECKS, values, active)
        failed = sorted({i for r, view in views.items() for i in active
                         if not self._zero_column_ok(r, view, i)})
        for i in failed:
            reported = {r: {j: int(v[i]) for j, (_, v) in view.items()}
                        for r, view in views.items()}
            culprits, bad_dealing = blame(
                self.servers[i].reveal_dealing(label), commits[i], dealer=i, m=self.m,
                t=self.t, label=label, length=length, coin=coin, reported=reported)
            if not culprits:
                raise AggregationError(f"{ABORT}: the check of server {i}'s dealt zero "
                                       f"sharing {label!r} failed and names no one")
            for c in culprits:
                self._identify(c, f"dealt zero sharing {label!r}: " + (
                    "its dealing is not a committed zero sharing of degree 2t" if bad_dealing
                    else f"sent a check value for server {i}'s dealing its shares do not give"))
            return False
        for j in active:
            self.servers[j].finish_zero(label, length)
        return True

    def _zero_column_ok(self, receiver: int, view: dict[int, tuple[int, FieldVec]],
                        dealer: int) -> bool:
        """Whether ``receiver`` decodes dealer's check values as a zero codeword of degree 2t
        with no error located."""
        col = {j: np.array([v[dealer]], np.uint64) for j, (_, v) in view.items()}
        try:
            got = self.servers[receiver].decode(col, 2 * self.t)
        except ReconstructionError:
            return False
        return not got.bad and int(got.value[0]) == 0

    def _complaint(self, label: str, length: int, *, dealer: int, receiver: int,
                   committed: bytes | None) -> bool:
        """A member's payload from ``dealer`` did not open: the dealer reveals it publicly
        (no secret is lost: either the receiver is corrupt, or the dealer is and sent a bad
        payload); a dealer whose revealed payload is not the committed one is identified
        (False: deal again without it)."""
        revealed = (self.servers[dealer].reveal_dealing(label) or {}).get(receiver)
        if revealed is None or not self.servers[receiver].receive_zero(
                label, length, dealer, None, committed, revealed=revealed):
            self._identify(dealer, f"dealt zero sharing {label!r}: its payload for server "
                                   f"{receiver} is not the committed one")
            return False
        return True

    # -- 4. per client ------------------------------------------------------------------------
    def process(self, client: int) -> Verdict:
        """Check one client: :meth:`process_batch` of one."""
        return self.process_batch([client])[0]

    def process_batch(self, clients: Sequence[int]) -> list[Verdict]:
        """Check clients and keep each one's contribution iff every check passes."""
        return self.finish_batch(self.start_batch(clients))

    def _active(self) -> list[int]:
        return [j for j in range(self.m) if j not in self.cheaters]

    def start_batch(self, clients: Sequence[int], slot_base: int = 0) -> PendingBatch:
        """Start the servers' local work on a batch (through ``run_local``). ``slot_base``
        picks the expansion buffers of non-streaming circuits: consecutive pending batches
        must not share them."""
        active = self._active()
        wait = self.run_local(lambda: self.run_parallel(
            lambda j: self.servers[j].local_batch(clients, slot_base), active))
        return PendingBatch(tuple(clients), tuple(active), wait)

    def finish_batch(self, pending: PendingBatch) -> list[Verdict]:
        """The disputes, openings and verdicts of a started batch, client by client."""
        try:
            done: list[list[Local]] = pending.wait()
            verdicts = []
            for k, client in enumerate(pending.clients):
                got = {j: per[k] for j, per in zip(pending.active, done, strict=True)}
                verdicts.append(self._record(self._judge_client(client, got)))
            return verdicts
        finally:
            for client in pending.clients:
                for s in self.servers:
                    s.forget(client)
                self.store.discard((client, -1, 1))

    def _judge_client(self, client: int, got: dict[int, Local]) -> Verdict:
        if client in self.bad_clients:
            for j, res in got.items():
                if not isinstance(res, Failure):
                    self.servers[j].rollback(res[0], res[1])
            return Verdict(client, Reject.BAD_BUNDLE, self.bad_clients[client])
        shares: dict[int, ClientShares] = {}
        local: dict[int, LocalResult] = {}
        claims: dict[int, Failure] = {}
        for j, res in got.items():
            if isinstance(res, Failure):
                claims[j] = res
                continue
            if self.tamper is not None and self.tamper.false_claim(j, client):
                self.servers[j].rollback(res[0], res[1])
                claims[j] = Failure(1, "claims the upload does not open")
                continue
            shares[j], local[j] = res
        for j, claim in sorted(claims.items()):
            if self._claim_holds(client, j, claim):
                self._rollback(shares, local)
                return Verdict(client, Reject.BAD_BUNDLE,
                               f"server {j}: {claim.detail}; the client's revealed envelope "
                               "does not prove otherwise")
            self._identify(j, f"false claim that client {client}'s part-{claim.part} upload "
                              "does not open (its revealed envelope opens)")
        now = [j for j in self._active() if j in local]
        verdict = self._judge(client, now, shares, local)
        if verdict.reason is not None:
            self._rollback(shares, local)
        return verdict

    def _verifier(self, exclude: int) -> Server:
        """An honest server to replay a dispute (the result is the same for each; the
        simulation computes it once)."""
        for j in self._active():
            if j != exclude and j not in self.faulty:
                return self.servers[j]
        raise AggregationError(f"{ABORT}: no honest server left to judge a dispute")

    def _claim_holds(self, client: int, server: int, claim: Failure) -> bool:
        """§3.4: the client re-sends the envelope ``server`` says does not open and reveals its
        ephemeral; the claim holds unless the envelope then opens and parses."""
        revealed = self.revealer(client, server, claim.part) if self.revealer else None
        if revealed is None:
            return True
        sealed, opener = revealed
        return self._verifier(server).verify_claim(client, claim.part, server, sealed, opener)

    def _identify(self, j: int, how: str) -> None:
        self.cheaters.add(j)
        self.evidence.setdefault(j, how)
        for s in self.servers:
            s.cheaters.add(j)

    def _record(self, verdict: Verdict) -> Verdict:
        self.verdicts.append(verdict)
        if verdict.reason is None:
            self.accepted.append(verdict.client)
        return verdict

    def _rollback(self, shares: dict[int, ClientShares], local: dict[int, LocalResult]) -> None:
        """Undo a rejected client's tentative contribution, now or (``defer_rollbacks``: the
        next batch may be accumulating) at ``finish`` from a copy of its shares."""
        for j, sh in shares.items():
            if j not in local:
                continue
            if self.defer_rollbacks:
                kept = tuple(v.copy() if isinstance(v, np.ndarray) else as_field(v)
                             for v in sh.vectors)
                self._deferred.append((j, ClientShares(kept, sh.scalars1, sh.scalars2),
                                       local[j]))
            else:
                self.servers[j].rollback(sh, local[j])

    def _judge(self, client: int, active: list[int], shares: dict[int, ClientShares],
               local: dict[int, LocalResult]) -> Verdict:
        cons = {j: Server.consistency_share(local[j]) for j in active}
        views = self._exchange(OpeningKind.CONSISTENCY, cons, active)
        blame = self._open_consistency(client, views)
        if blame:
            return Verdict(client, Reject.INCONSISTENT_SHARING, blame)
        checks = {j: self.servers[j].check_share(client, local[j]) for j in active}
        opened = self._open(OpeningKind.CHECKS, checks, self._active_of(active), 2)
        g = len(self.circuit.check_reasons)
        for reason, value in zip(self.circuit.check_reasons, opened[:g], strict=True):
            if int(value) != 0:
                return Verdict(client, reason, "check value is not 0")
        return Verdict(client, None, revealed=tuple(int(v) for v in opened[g:]))

    def _active_of(self, servers: Sequence[int]) -> list[int]:
        return [j for j in servers if j not in self.cheaters]

    def _open_consistency(self, client: int,
                          views: dict[int, dict[int, tuple[int, FieldVec]]]) -> str:
        """Decode the degree-t consistency opening; resolve disputes (§3.4). '' if consistent.

        A server whose share RS decoding marks says it used the client's committed bundle; the
        client re-sends that bundle with its ephemeral revealed, and an honest server recomputes
        the value: equal → the client's sharing is inconsistent; different → the server lied."""
        for r, view in views.items():
            try:
                opened = self.servers[r].decode({j: v for j, (_, v) in view.items()}, self.t)
            except ReconstructionError as e:
                if len(view) < self.t + 1:
                    raise AggregationError(f"{ABORT}: {e}") from e
                return f"not a degree-t sharing ({e})"
            for b in opened.bad:
                sent = int(view[b][1][0])
                if self._recomputed(client, b) == sent:
                    return f"server {b}'s committed bundle disagrees with the others"
                self._identify(b, f"sent a consistency share for client {client} that its "
                                  "committed bundle does not give")
        return ""

    def _recomputed(self, client: int, server: int) -> int | None:
        """``server``'s consistency value from its committed bundles as the client reveals
        them, or None when the client cannot (then the client is to blame)."""
        if self.revealer is None:
            return None
        uploads: dict[int, bytes | memoryview] = {}
        openers: dict[int, Opener] = {}
        for part in (1, 2):
            got = self.revealer(client, server, part)
            if got is None or got[0] is None:
                return None
            uploads[part], openers[part] = got[0], got[1]
        return self._verifier(server).recompute_consistency(client, server, uploads, openers)

    def _exchange(self, kind: OpeningKind, values: Mapping[int, FieldVec],
                  senders: Sequence[int]) -> dict[int, dict[int, tuple[int, FieldVec]]]:
        """Every sender sends its share to every other active server.

        Returns, for each honest receiver, sender → (key, shares) where equal keys mean the same
        payload (honest senders send one payload to all), so a clean decoding can be shared in
        the simulation; each receiver is still charged the time of unpacking what it received.
        """
        receivers = [r for r in senders if r not in self.faulty]
        packed: dict[int, bytes] = {}
        for j in senders:
            for r in senders:
                if r == j:
                    continue
                vec = values[j]
                sent = vec if self.tamper is None else self.tamper.tamper(j, kind, r, vec)
                if sent is None:
                    self.silent.add(j)
                    continue
                if sent is vec:
                    if j not in packed:
                        packed[j] = pack61(vec)
                    payload = packed[j]
                else:
                    payload = pack61(sent)
                self.channel.send(server_party(j), server_party(r), payload)
        self.channel.end_round()
        views: dict[int, dict[int, tuple[int, FieldVec]]] = {}
        unpacked: dict[int, tuple[FieldVec, float]] = {}
        for r in senders:
            inbox = self.channel.receive(server_party(r))
            if r not in receivers:
                continue
            view = {r: (id(values[r]), values[r])}
            for sender, got in inbox:
                j = int(sender.split(":")[1])
                key = id(values[j]) if got is packed.get(j) else id(got)
                if key not in unpacked:
                    t0 = self.clock()
                    vec = unpack61(bytes(got), values[r].shape[0])
                    unpacked[key] = (vec, self.clock() - t0)
                vec, dt = unpacked[key]
                self.servers[r].charge(opening_kind_charge(kind), dt)
                view[j] = (key, vec)
            views[r] = view
        return views

    def _open(self, kind: OpeningKind, values: Mapping[int, FieldVec], senders: Sequence[int],
              degree_factor: int) -> FieldVec:
        """Open a sharing of degree factor·t; identify cheaters; abort when undecodable.

        Every honest receiver decodes what it received with its own coin; receivers with the
        same view share a decoding that found no error (no coin is used then)."""
        views = self._exchange(kind, values, senders)
        degree = degree_factor * self.t
        result: FieldVec | None = None
        clean: dict[tuple[tuple[int, int], ...], tuple[Opened, float]] = {}
        for r, view in views.items():
            key = tuple(sorted((j, k) for j, (k, _) in view.items() if j not in self.cheaters))
            if key in clean:
                got, dt = clean[key]
            else:
                t0 = self.clock()
                try:
                    got = self.servers[r].decode({j: v for j, (_, v) in view.items()}, degree)
                except ReconstructionError as e:
                    raise AggregationError(self._abort_reason(kind, degree, len(view), e)) from e
                dt = self.clock() - t0
                if not got.bad:
                    clean[key] = (got, dt)
            self.servers[r].charge(opening_kind_charge(kind), dt)
            for b in got.bad:
                self._identify(b, f"sent a share off the degree-{degree} codeword in the "
                                  f"{kind.value} opening")
            result = got.value
        if result is None:
            raise AggregationError(f"{ABORT}: no honest server left to open {kind.value}")
        return result

    def _abort_reason(self, kind: OpeningKind, degree: int, n: int,
                      e: ReconstructionError) -> str:
        """Why a round aborts, and why no server is named (docs/protocol.md, identified
        abort): with n shares of a degree-D sharing and n − D − 1 < 2, every set of D + 1
        shares fits a polynomial, so each sender is an equally good suspect."""
        if n >= degree + 1 and n - degree - 1 < 2:
            return (f"{ABORT}: {kind.value} opening: a share is off the degree-{degree} "
                    f"codeword but {n} shares cannot say whose (identification needs "
                    f"n >= {degree + 3}, i.e. m >= 4t + 1 for degree-2t openings): {e}")
        return f"{ABORT}: {kind.value} opening: {e}"

    # -- 5. output ----------------------------------------------------------------------------
    def finish(self) -> Outcome:
        """Open the aggregate and decode the output (zero vector when nobody was accepted)."""
        for j, sh, res in self._deferred:
            self.servers[j].rollback(sh, res)
        self._deferred.clear()
        active = self._active()
        if not active:
            raise AggregationError(f"{ABORT}: no honest server left")
        if self.zero == "dealt":
            for label, length in self.servers[active[0]].final_zero_lengths().items():
                self.deal_zeros(label, length)
        finals = {j: self.servers[j].final_shares() for j in active}
        opened: dict[OpeningKind, FieldVec] = {}
        for k, first in enumerate(finals[active[0]]):
            values = {j: finals[j][k].values for j in active}
            opened[first.kind] = self._open(first.kind, values, self._active_of(active),
                                            2 if first.degree_2t else 1)
        vector, revealed = self.circuit.finish(opened, len(self.accepted))
        return self._outcome(vector, revealed, None)

    def _outcome(self, vector: np.ndarray[Any, np.dtype[np.float32]] | None,
                 revealed: dict[str, float], aborted: str | None) -> Outcome:
        return Outcome(vector, revealed, tuple(self.verdicts), tuple(sorted(self.cheaters)),
                       tuple(sorted(self.silent)), aborted,
                       tuple(s.seconds for s in self.servers),
                       tuple(dict(s.breakdown) for s in self.servers), dict(self.evidence))

    def aborted(self, reason: str) -> Outcome:
        """The outcome of an aborted round: no output, the verdicts so far."""
        if not reason.startswith(ABORT):
            raise ConfigError(f"abort reason {reason!r} must start with {ABORT!r}")
        return self._outcome(None, {}, reason)
