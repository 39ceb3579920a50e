"""The committee engine: m servers in one process, talking through a Channel (protocol.md §3).

Order of a round (§3.2–3.4):
1. ``setup``: PRZS keys — the first member of every set A of m − t servers draws k_A and sends it
   sealed to the other members.
2. ``receive``: clients' sealed bundles arrive; the committee records their commitments and
   the servers keep the part-1 uploads in a ``BundleStore`` until they can process them.
3. ``begin``: coin1 = H(seed, part-1 commitments) fixes the projection rows (clients answer with
   part 2); coin2 = H(coin1, part-2 commitments) fixes every check coefficient.
4. ``process_batch`` (a few clients at a time): every server runs the circuit's fused pass over
   the batch, reading each stored part-1 upload chunk by chunk as it decrypts it (tentatively
   accumulating; ``mpc.stream``), then checks every upload's tag and commitment (a failing
   one is undone and its client rejected), then, client by client, the servers open the masked
   consistency value (degree t, with correction and the dispute rule) and its check values
   (degree 2t, re-randomized with PRZS). A rejected client's contribution is rolled back.
5. ``finish``: the servers open the aggregate shares and the circuit decodes the output.
A server caught by RS correction is reported and treated as an erasure from then on; an error
that is detected but not correctable, or too few shares, aborts with "committee-abort".
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np

from phalanx.errors import AggregationError, ConfigError, ReconstructionError, Reject
from phalanx.mpc.channel import Channel, client_party, server_party
from phalanx.mpc.circuit import Circuit, ClientShares, LocalResult
from phalanx.mpc.committee_client import (
    Observer,
    Sealer,
    commitment_hasher,
    commitment_of,
    context_of,
)
from phalanx.mpc.field import FieldVec
from phalanx.mpc.messages import (
    OpeningKind,
    PublicBlob,
    Scratch,
    SealedBundle,
    ShareBundle,
    ShareVector,
    as_field,
    decode_bundle,
    decode_masked,
    masked_views,
    pack61,
    unpack61,
)
from phalanx.mpc.prg import Prg, derive
from phalanx.mpc.przs import KeySet, key_sets, zero_share
from phalanx.mpc.rs import Opened, decode
from phalanx.mpc.shamir import validate_committee
from phalanx.mpc.stream import (
    MaskedStream,
    PackedStream,
    Reader,
    SeededStream,
    StoredVector,
    read_all,
    read_bundle,
)

Clock = Callable[[], float]
ParallelMap = Callable[[Callable[[int], Any], Sequence[int]], list[Any]]
StoreKey = tuple[int, int, int]
"""(client, server or −1 for a public blob, part)."""
Streamer = Callable[[int, bytes | memoryview, bytes, Observer | None], Reader]
"""open_stream(server, sealed, context, observe): the envelope as a ``stream.Reader`` (decrypted
piece by piece as it is read, authenticated by ``verify``); ``observe`` sees its pieces."""
ABORT = "committee-abort"


class ShareTamper(Protocol):
    """Server misbehaviour in openings (models live in ``phalanx.attacks.servers``)."""

    def faulty(self) -> frozenset[int]:
        """Servers that may deviate (their own conclusions are ignored)."""

    def tamper(
        self, server: int, kind: OpeningKind, receiver: int, shares: FieldVec
    ) -> FieldVec | None:
        """What ``server`` sends ``receiver`` instead of ``shares``; None sends nothing."""


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


class BundleStore(Protocol):
    """Where the servers keep the part-1 uploads between ``receive`` and ``process`` (a real
    server writes them to disk; ``rules.secure.spool`` does that for the simulation)."""

    def put(self, key: StoreKey, data: bytes | memoryview) -> None:
        """Keep ``data`` under ``key``."""

    def get(self, key: StoreKey) -> bytes | memoryview | None:
        """The bytes kept under ``key`` (a buffer the caller does not modify), or None."""

    def discard(self, key: StoreKey) -> None:
        """Forget ``key`` (no error when absent)."""


class MemoryStore:
    """A :class:`BundleStore` in a dict: O(n·m·d) memory, for small rounds and tests."""

    def __init__(self) -> None:
        self._data: dict[StoreKey, bytes | memoryview] = {}

    def put(self, key: StoreKey, data: bytes | memoryview) -> None:
        self._data[key] = data

    def get(self, key: StoreKey) -> bytes | memoryview | None:
        return self._data.get(key)

    def discard(self, key: StoreKey) -> None:
        self._data.pop(key, None)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The committee's decision on one client."""

    client: int
    reason: Reject | None
    detail: str = ""


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


@dataclass(slots=True)
class _State:
    commitments: dict[tuple[int, int, int], bytes] = field(default_factory=dict)
    part2: dict[tuple[int, int], SealedBundle] = field(default_factory=dict)
    blob2: dict[int, PublicBlob] = field(default_factory=dict)
    cheaters: set[int] = field(default_factory=set)
    silent: set[int] = field(default_factory=set)
    accepted: list[int] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    check_zero: dict[int, FieldVec] = field(default_factory=dict)
    client_index: dict[int, int] = field(default_factory=dict)


def _charged(kind: OpeningKind) -> str:
    """The breakdown entry an opening's time goes to: per-client openings, or the final ones."""
    return "final" if kind in (OpeningKind.AGGREGATE, OpeningKind.WEIGHT_SUM) else "openings"


def _unpacked(shares: ClientShares) -> ClientShares:
    """A client's shares with every vector as plain field elements (read again if stored)."""
    return ClientShares(tuple(as_field(v) for v in shares.vectors), shares.scalars1,
                        shares.scalars2)


class _Upload:
    """One server's part-1 upload from one client, opened as a stream (``Committee.streamer``):
    ``open`` reads its header and small items, the pass reads its long vector, ``authentic``
    then checks tag and commitment, and ``stored`` replaces the consumed stream by a
    ``StoredVector`` that reads the upload again from the server's store when needed."""

    def __init__(self, committee: Committee, client: int, j: int, sealed: bytes | memoryview,
                 committed: bytes) -> None:
        self.committee, self.client, self.j = committee, client, j
        self.sealed, self.committed = sealed, committed
        self.hasher = commitment_hasher()
        self.streams: list[PackedStream] = []
        self.reader: Reader | None = None

    def _read(self, observe: Observer | None) -> tuple[Reader, ShareBundle]:
        c = self.committee
        reader = c.streamer(self.j, self.sealed, context_of(self.client, self.j, 1), observe)
        return reader, read_bundle(reader, c.clock)

    def open(self) -> ShareBundle:
        self.reader, body = self._read(self.hasher.update)
        self.streams = [v for v in body.vectors if isinstance(v, PackedStream)]
        return body

    def read_seconds(self) -> float:
        return sum(s.seconds for s in self.streams)

    def authentic(self) -> bool:
        """Tag and commitment, once the pass read the stream (what it left is read here)."""
        assert self.reader is not None
        try:
            for s in self.streams:
                if s.done < s.n:
                    s.drain()
            self.reader.verify()
        except Exception:  # noqa: BLE001 - any failure to authenticate blames the client
            return False
        return self.hasher.digest() == self.committed

    def stored(self, shares: ClientShares) -> ClientShares:
        """``shares`` with each streamed vector replaced by a re-readable ``StoredVector``."""
        if not any(isinstance(v, PackedStream) for v in shares.vectors):
            return shares
        labels = self.committee.circuit.vector_labels
        vectors = tuple(StoredVector(v.n, partial(self.load, lab))
                        if isinstance(v, PackedStream) else v
                        for lab, v in zip(labels, shares.vectors, strict=True))
        return ClientShares(vectors, shares.scalars1, shares.scalars2)

    def load(self, label: str) -> FieldVec:
        """Vector ``label`` read again from the stored upload: the same bytes as the pass read
        (authenticated then, or being rolled back because they were not)."""
        _, body = self._read(None)
        return as_field(dict(zip(body.labels, body.vectors, strict=True))[label])


class Committee:
    """m servers running one secure aggregation, each with its own accumulator and keys."""

    def __init__(
        self,
        circuit: Circuit,
        *,
        m: int,
        t: int,
        channel: Channel,
        sealer: Sealer,
        streamer: Streamer,
        seed: bytes,
        clock: Clock = lambda: 0.0,
        tamper: ShareTamper | None = None,
        store: BundleStore | None = None,
        run_parallel: ParallelMap | None = None,
        run_local: RunLocal | None = None,
        defer_rollbacks: bool = False,
    ) -> None:
        validate_committee(m, t)
        #: maps a server's local work over the servers (in order); the simulation passes a
        #: thread pool's map (every kernel releases the GIL), the default runs them in turn
        self.run_parallel: ParallelMap = run_parallel or _in_turn
        #: starts a batch's local work and returns how to wait for it (default: now, in turn)
        self.run_local: RunLocal = run_local or _at_once
        #: rollbacks wait for ``finish`` (set when batches overlap: the next batch may be
        #: adding into the accumulators while this one is judged)
        self.defer_rollbacks = defer_rollbacks
        self._deferred: list[tuple[int, ClientShares, LocalResult]] = []
        self._lock = threading.Lock()
        self.store: BundleStore = store if store is not None else MemoryStore()
        self.circuit, self.m, self.t = circuit, m, t
        self.channel, self.sealer, self.streamer = channel, sealer, streamer
        self.seed, self.clock, self.tamper = seed, clock, tamper
        self.faulty = tamper.faulty() if tamper is not None else frozenset()
        self.seconds = [0.0] * m
        #: per server: seconds by kind of work (transport: fetch, verify and open bundles;
        #: compute: expansion and the fused pass; openings: exchange and decoding of the
        #: per-client values; final: of the aggregate; round: PRZS)
        self.breakdown = [{"transport": 0.0, "compute": 0.0, "openings": 0.0, "final": 0.0,
                           "round": 0.0}
                          for _ in range(m)]
        self.state = _State()
        #: (server, slot in the batch) → the buffers that server expands that slot's seeded
        #: upload into when its circuit does not stream (reused by every batch; each key is
        #: used by one thread)
        self._scratch: dict[tuple[int, int], Scratch] = {}
        self.keys: dict[int, dict[KeySet, bytes]] = {j: {} for j in range(m)}
        self.acc = {j: circuit.new_accumulator() for j in range(m)}
        self._counter = 0

    # -- 1. set-up --------------------------------------------------------------------------
    def setup(self) -> None:
        """Distribute the PRZS keys: A's first member draws k_A and seals it to the others."""
        for a in key_sets(self.m, self.t):
            owner = a[0]
            key = derive(self.seed, "przs-key", owner, *a)
            self.keys[owner][a] = key
            for j in a[1:]:
                ctx = f"przs/{a}".encode()
                sealed = self.sealer(j, key, ctx, None)
                self.channel.send(server_party(owner), server_party(j), sealed)
        self.channel.end_round()
        for j in range(self.m):
            for sender, sealed in self.channel.receive(server_party(j)):
                owner = int(sender.split(":")[1])
                for a in key_sets(self.m, self.t):
                    if a[0] == owner and j in a and a not in self.keys[j]:
                        try:
                            self.keys[j][a] = read_all(
                                self.streamer(j, sealed, f"przs/{a}".encode(), None))
                            break
                        except Exception:  # noqa: BLE001 - wrong set for this envelope
                            continue

    # -- 2. uploads -------------------------------------------------------------------------
    def receive(self, client: int, bundles: Mapping[int, SealedBundle],
                blob: PublicBlob | None = None) -> None:
        """Deliver a client's sealed bundles (and its public masked blob, uploaded once to the
        content-addressed store and fetched by every server); record commitments. Part-1
        uploads go to the bundle store (delivery, like the network: not charged to the
        server; reading them back in ``process`` is); the small part-2 uploads stay in
        memory."""
        if blob is not None:
            self.channel.send(client_party(client), "store", blob.data)
            self.channel.receive("store")
            self.state.commitments[(client, -1, blob.part)] = blob.commitment
            if blob.part == 2:
                self.state.blob2[client] = blob
            else:
                self.store.put((client, -1, 1), blob.data)
        for j, b in bundles.items():
            self.channel.send(client_party(client), server_party(j), b.sealed)
            self.channel.receive(server_party(j))
            self.state.commitments[(client, j, b.part)] = b.commitment
            if b.part == 2:
                self.state.part2[(client, j)] = b
            else:
                self.store.put((client, j, 1), b.sealed)

    def coin(self, part: int, previous: bytes = b"") -> bytes:
        """The public coin after every part-``part`` commitment (sorted for determinism)."""
        h = hashlib.sha256(b"phalanx/coin" + self.seed + previous + bytes([part]))
        for key in sorted(k for k in self.state.commitments if k[2] == part):
            h.update(repr(key).encode() + self.state.commitments[key])
        return h.digest()

    # -- 3. public randomness -----------------------------------------------------------------
    def begin(self, clients: Sequence[int], coin1: bytes, coin2: bytes) -> None:
        """Fix the round's public randomness and the PRZS masks of every client's checks."""
        self.circuit.begin(coin1, coin2)
        self.state.client_index = {c: k for k, c in enumerate(clients)}
        g = len(self.circuit.check_reasons)
        for j in range(self.m):
            t0 = self.clock()
            self.state.check_zero[j] = zero_share(
                self.keys[j], j, m=self.m, t=self.t, label="checks", length=len(clients) * g)
            self._add(j, "round", self.clock() - t0)

    # -- 4. per client ------------------------------------------------------------------------
    def process(self, client: int) -> Verdict:
        """Check one client: :meth:`process_batch` of one."""
        return self.process_batch([client])[0]

    def process_batch(self, clients: Sequence[int]) -> list[Verdict]:
        """Check clients (their stored part-1 and their part-2 uploads) and keep each one's
        contribution iff every check passes; stored uploads are discarded afterwards.

        Each server opens the batch's uploads and runs one fused pass over all of them (the
        servers' local work goes through ``run_parallel``); the openings and verdicts then
        follow client by client, in order, exactly as for single clients."""
        return self.finish_batch(self.start_batch(clients))

    def start_batch(self, clients: Sequence[int], slot_base: int = 0) -> PendingBatch:
        """Start the servers' local work on a batch (through ``run_local``: it may still run
        while the previous batch is judged, when ``defer_rollbacks`` is set). ``slot_base``
        picks the expansion buffers of non-streaming circuits: consecutive pending batches
        must not share them."""
        active = [j for j in range(self.m) if j not in self.state.cheaters]
        publics = {c: self._fetch_blobs(c, active) for c in clients}  # uses the channel: here
        wait = self.run_local(lambda: self.run_parallel(
            lambda j: self._serve(clients, j, publics, slot_base), active))
        return PendingBatch(tuple(clients), tuple(active), wait)

    def finish_batch(self, pending: PendingBatch) -> list[Verdict]:
        """The openings and verdicts of a started batch, client by client, in order."""
        try:
            done = pending.wait()
            verdicts = []
            for k, client in enumerate(pending.clients):
                shares: dict[int, ClientShares] = {}
                local: dict[int, LocalResult] = {}
                bad = []
                for j, per_client in zip(pending.active, done, strict=True):
                    got, res = per_client[k]
                    if got is None or res is None:
                        bad.append(j)
                    else:
                        shares[j], local[j] = got, res
                if bad:
                    self._rollback(shares, local)
                    verdicts.append(self._record(Verdict(client, Reject.BAD_BUNDLE,
                                                         f"server {bad[0]}")))
                    continue
                now = [j for j in pending.active if j not in self.state.cheaters]
                verdict = self._judge(client, now, shares, local)
                if verdict.reason is not None:
                    self._rollback(shares, local)
                verdicts.append(self._record(verdict))
            return verdicts
        finally:
            for client in pending.clients:
                for j in range(-1, self.m):
                    self.store.discard((client, j, 1))

    def _serve(self, clients: Sequence[int], j: int,
               publics: Mapping[int, Mapping[int, bytes | memoryview | None]],
               slot_base: int = 0) -> list[tuple[ClientShares | None, LocalResult | None]]:
        """Server j's local work on a batch of clients, timed on the thread that does it.

        Part-1 vectors stay in their envelopes until the pass reads them chunk by chunk; each
        envelope is authenticated and checked against its commitment after the pass, and a
        client whose upload fails that has its tentative contribution taken out again (the
        same bytes, read again) and gets no result."""
        t0 = self.clock()
        opened = [self._open_shares(c, j, publics[c], slot=slot_base + k)
                  for k, c in enumerate(clients)]
        t1 = self.clock()
        good = [got[0] for got in opened if got is not None]
        results = iter(self.circuit.server_process_batch(good, self.acc[j]) if good else [])
        t2 = self.clock()
        out: list[tuple[ClientShares | None, LocalResult | None]] = []
        for got in opened:
            if got is None:
                out.append((None, None))
                continue
            shares, upload = got
            res = next(results)
            if upload.authentic():
                out.append((upload.stored(shares), res))
            else:
                self.circuit.server_rollback(upload.stored(shares), res, self.acc[j])
                out.append((None, None))
        t3 = self.clock()
        streamed = sum(got[1].read_seconds() for got in opened if got is not None)
        self._add(j, "transport", t1 - t0 + streamed + t3 - t2)
        self._add(j, "compute", t2 - t1 - streamed)
        return out

    def _add(self, j: int, kind: str, dt: float) -> None:
        with self._lock:  # server j's local work and the openings may run on two threads
            self.seconds[j] += dt
            self.breakdown[j][kind] += dt

    def _record(self, verdict: Verdict) -> Verdict:
        self.state.verdicts.append(verdict)
        if verdict.reason is None:
            self.state.accepted.append(verdict.client)
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
                self.circuit.server_rollback(sh, local[j], self.acc[j])

    def _fetch_blobs(self, client: int,
                     active: list[int]) -> dict[int, bytes | memoryview | None]:
        """Every server fetches the client's public blobs and checks them against the
        commitments. The work is identical for all servers, so the simulation does it once and
        charges its CPU time to each; the download is counted per server."""
        out: dict[int, bytes | memoryview | None] = {}
        t0 = self.clock()
        blob2 = self.state.blob2.get(client)
        held = {1: self.store.get((client, -1, 1)), 2: None if blob2 is None else blob2.data}
        for part, data in held.items():
            committed = self.state.commitments.get((client, -1, part))
            if data is None or committed is None:
                out[part] = None
                continue
            for j in active:
                self.channel.send("store", server_party(j), data)
                self.channel.receive(server_party(j))
            out[part] = data if commitment_of(data) == committed else None
        dt = self.clock() - t0
        for j in active:
            self._add(j, "transport", dt)
        return out

    def _slot(self, j: int, slot: int) -> Scratch:
        """Server j's reused buffers for batch slot ``slot``."""
        got = self._scratch.get((j, slot))
        if got is None:
            got = self._scratch[(j, slot)] = Scratch()
        return got

    def _open_shares(self, client: int, j: int, public: Mapping[int, bytes | memoryview | None],
                     slot: int = 0) -> tuple[ClientShares, _Upload] | None:
        """Server j's shares of the client, or None when an upload is missing or malformed.
        Part 2 (small) is opened and checked against its commitment here; part 1 is opened
        as a stream whose long vector the pass reads in place, and ``_Upload`` checks it
        after the pass."""
        ctx2 = context_of(client, j, 2)
        b2 = self.state.part2.get((client, j))
        sealed1 = self.store.get((client, j, 1))
        committed1 = self.state.commitments.get((client, j, 1))
        committed2 = self.state.commitments.get((client, j, 2))
        if b2 is None or sealed1 is None or committed1 is None or committed2 is None:
            return None
        hasher = commitment_hasher()
        try:
            raw = read_all(self.streamer(j, b2.sealed, ctx2, hasher.update))
            if hasher.digest() != committed2:
                return None
            body2 = decode_bundle(raw, packed=True)
            upload = _Upload(self, client, j, sealed1, committed1)
            body1 = upload.open()
        except Exception:  # noqa: BLE001 - any failure to open blames the client
            return None
        lengths = self.circuit.item_lengths()
        want1 = {lab: lengths[lab] for lab in (*self.circuit.vector_labels, "s1")}
        for body, part, want in ((body1, 1, want1), (body2, 2, {"s2": lengths["s2"]})):
            if (body.client != client or body.server != j or body.part != part
                    or len(body.labels) != len(want)
                    or dict(zip(body.labels, body.lengths, strict=True)) != want):
                return None
        try:
            items = [dict(zip(body.labels, self._items(body, public.get(part), j, slot),
                              strict=True))
                     for part, body in ((1, body1), (2, body2))]
        except ConfigError:
            return None
        vectors = tuple(items[0][label] for label in self.circuit.vector_labels)
        return ClientShares(vectors, as_field(items[0]["s1"]), as_field(items[1]["s2"])), upload

    def _items(self, body: ShareBundle, blob: bytes | memoryview | None, j: int,
               slot: int) -> list[ShareVector]:
        """The share vectors of one decoded bundle (masked bundles need their public blob; a
        seeded server expands part 1 as the pass reads it, or into its reused per-slot buffers
        when the circuit does not stream)."""
        if body.seed is not None and body.part == 1 and self.circuit.streams:
            seed = body.seed
            return [SeededStream(seed, lab, n)
                    for lab, n in zip(body.labels, body.lengths, strict=True)]
        if body.seed is not None and body.part == 1:
            bufs = [self._slot(j, slot).array(f"expansion/{k}", (n + 2,))
                    for k, n in enumerate(body.lengths)]
            return list(body.shares(out=bufs))
        if body.masked_hash is None:
            return body.shares()
        # ``blob`` was checked against the client's public commitment when it was fetched
        if blob is None or body.masked_hash != self.state.commitments.get(
                (body.client, -1, body.part)):
            raise ConfigError("masked bundle without its committed public blob")
        if body.part == 1 and self.circuit.streams:
            keys = dict(body.keys)
            return [MaskedStream(c, keys, j, m=self.m, label=lab)
                    for c, lab in zip(masked_views(blob, body.lengths), body.labels,
                                      strict=True)]
        return list(body.shares(decode_masked(blob, body.lengths), self.m))

    def _judge(self, client: int, active: list[int], shares: dict[int, ClientShares],
               local: dict[int, LocalResult]) -> Verdict:
        cons = {j: np.array([local[j].consistency % ((1 << 61) - 1)], np.uint64) for j in active}
        views = self._exchange(OpeningKind.CONSISTENCY, cons, active)
        blame = self._open_consistency(views, shares)
        if blame:
            return Verdict(client, Reject.INCONSISTENT_SHARING, blame)
        g = len(self.circuit.check_reasons)
        row = self.state.client_index[client] * g
        checks = {}
        for j in active:
            zero = self.state.check_zero[j][row : row + g]
            vals = np.array(local[j].checks, dtype=np.uint64)
            checks[j] = (vals + zero) % np.uint64((1 << 61) - 1)
        opened = self._open(OpeningKind.CHECKS, checks, [j for j in active
                                                         if j not in self.state.cheaters], 2)
        for reason, value in zip(self.circuit.check_reasons, opened, strict=True):
            if int(value) != 0:
                return Verdict(client, reason, "check value is not 0")
        return Verdict(client, None)

    def _open_consistency(self, views: dict[int, dict[int, tuple[int, FieldVec]]],
                          shares: dict[int, ClientShares]) -> str:
        """Decode the degree-t consistency opening; resolve disputes (§3.4). '' if consistent."""
        for r, view in views.items():
            try:
                opened = self._decode(view, self.t, OpeningKind.CONSISTENCY, r)
            except ReconstructionError as e:
                if len(view) < self.t + 1:
                    raise AggregationError(f"{ABORT}: {e}") from e
                return f"not a degree-t sharing ({e})"
            for b in opened.bad:
                honest = self.circuit.server_process(_unpacked(shares[b]), None).consistency
                if int(view[b][1][0]) == honest % ((1 << 61) - 1):
                    return f"server {b}'s committed bundle disagrees with the others"
                self.state.cheaters.add(b)
        return ""

    def _exchange(self, kind: OpeningKind, values: Mapping[int, FieldVec],
                  senders: Sequence[int]) -> dict[int, dict[int, tuple[int, FieldVec]]]:
        """Every sender sends its share to every other active server.

        Returns, for each honest receiver, sender → (key, shares) where equal keys mean the same
        payload (honest senders send one payload to all), so decoding can be shared in the
        simulation; each receiver is still charged the time of unpacking what it received.
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
                    self.state.silent.add(j)
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
                self._add(r, _charged(kind), dt)
                view[j] = (key, vec)
            views[r] = view
        return views

    def _decode(self, view: Mapping[int, tuple[int, FieldVec]], degree_t: int,
                kind: OpeningKind, receiver: int) -> Opened:
        servers = sorted(j for j in view if j not in self.state.cheaters)
        mat = (np.stack([view[j][1] for j in servers]) if servers
               else np.zeros((0, 1), np.uint64))
        self._counter += 1
        coin = Prg(derive(self.seed, "decode", receiver, kind.value, self._counter))
        return decode(servers, mat, degree_t, coin)

    def _open(self, kind: OpeningKind, values: Mapping[int, FieldVec], senders: Sequence[int],
              degree_factor: int) -> FieldVec:
        """Open a sharing of degree factor·t; identify cheaters; abort when undecodable."""
        views = self._exchange(kind, values, senders)
        degree = degree_factor * self.t
        result: FieldVec | None = None
        cache: dict[tuple[tuple[int, int], ...], tuple[Opened | ReconstructionError, float]] = {}
        for r, view in views.items():
            key = tuple(sorted((j, k) for j, (k, _) in view.items()))
            if key not in cache:
                t0 = self.clock()
                try:
                    got: Opened | ReconstructionError = self._decode(view, degree, kind, r)
                except ReconstructionError as e:
                    got = e
                cache[key] = (got, self.clock() - t0)
            got, dt = cache[key]
            self._add(r, _charged(kind), dt)
            if isinstance(got, ReconstructionError):
                raise AggregationError(f"{ABORT}: {kind.value} opening: {got}") from got
            self.state.cheaters.update(got.bad)
            result = got.value
        if result is None:
            raise AggregationError(f"{ABORT}: no honest server left to open {kind.value}")
        return result

    # -- 5. output ----------------------------------------------------------------------------
    def finish(self) -> Outcome:
        """Open the aggregate and decode the output (zero vector when nobody was accepted)."""
        for j, sh, res in self._deferred:
            self.circuit.server_rollback(sh, res, self.acc[j])
        self._deferred.clear()
        active = [j for j in range(self.m) if j not in self.state.cheaters]
        finals = {j: self.circuit.final_shares(self.acc[j]) for j in active}
        opened: dict[OpeningKind, FieldVec] = {}
        for k, first in enumerate(finals[active[0]]):
            values = {}
            for j in active:
                t0 = self.clock()
                fs = finals[j][k]
                vals = fs.values
                if fs.degree_2t:
                    zero = zero_share(self.keys[j], j, m=self.m, t=self.t,
                                      label=f"final/{fs.kind.value}", length=vals.shape[0])
                    vals = (vals + zero) % np.uint64((1 << 61) - 1)
                values[j] = vals
                self._add(j, "round", self.clock() - t0)
            senders = [j for j in active if j not in self.state.cheaters]
            opened[first.kind] = self._open(first.kind, values, senders,
                                            2 if first.degree_2t else 1)
        vector, revealed = self.circuit.finish(opened, len(self.state.accepted))
        return Outcome(vector, revealed, tuple(self.state.verdicts),
                       tuple(sorted(self.state.cheaters)), tuple(sorted(self.state.silent)),
                       None, tuple(self.seconds), tuple(self.breakdown))

    def aborted(self, reason: str) -> Outcome:
        """The outcome of an aborted round: no output, the verdicts so far."""
        if not reason.startswith(ABORT):
            raise ConfigError(f"abort reason {reason!r} must start with {ABORT!r}")
        return Outcome(None, {}, tuple(self.state.verdicts), tuple(sorted(self.state.cheaters)),
                       tuple(sorted(self.state.silent)), reason, tuple(self.seconds),
                       tuple(self.breakdown))
