"""One committee server: its own keys, uploads, accumulator and coins (protocol.md §2–3.4).

A :class:`Server` is what one committee member does in the MPC, and nothing else: it never sees
another server's state. Its secrets (the PRZS keys it deals as the first member of a key set,
and the coefficients it locates decoding errors with) come from its own :class:`SecretSource`.
Messages in and out are plain values; the caller moves them (``mpc.committee`` in process,
``protocol.committee`` in a real peer).

Order: ``deal_przs`` / ``receive_przs`` → ``accept_upload`` (immutable: a second upload for the
same client and part is refused and named) → ``begin`` once both coins are public →
``local_batch`` (the fused pass over stored uploads, authenticated after it) → the per-client
openings (``consistency_share``, ``check_share``, ``decode``) → ``final_shares``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np

from phalanx.errors import ConfigError, ProtocolViolation, Reject
from phalanx.mpc.circuit import Circuit, ClientShares, FinalShare, LocalResult, check_width
from phalanx.mpc.committee_client import (
    Observer,
    Sealer,
    commitment_hasher,
    commitment_of,
    context_of,
)
from phalanx.mpc.dealt import Dealing, batch_length, check_value, deal, extract, share_of
from phalanx.mpc.dealt import commitment as dealt_commitment
from phalanx.mpc.field import FieldVec, P
from phalanx.mpc.messages import (
    OpeningKind,
    Scratch,
    ShareBundle,
    ShareVector,
    as_field,
    decode_bundle,
    decode_masked,
    masked_views,
)
from phalanx.mpc.parties import SecretSource, SeededSecrets
from phalanx.mpc.przs import KeySet, check_cdi_size, key_sets, zero_share
from phalanx.mpc.rs import Opened, decode
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
StoreKey = tuple[int, int, int]
"""(client, server or −1 for a public blob, part)."""
Opener = Callable[[bytes | memoryview, bytes, Observer | None], Reader]
"""open(sealed, context, observe): an envelope addressed to this server, as a ``Reader``."""
_P = np.uint64(P)


class BundleStore(Protocol):
    """Where a server keeps the part-1 uploads between ``accept_upload`` and the pass (a real
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
class Failure:
    """Why a server could not use a client's upload (the claim a dispute then tests)."""

    part: int
    detail: str


Local = tuple[ClientShares, LocalResult] | Failure
"""A server's result for one client of a batch: its shares and local values, or a failure."""


def check_layout(circuit: Circuit, body: ShareBundle, client: int, server: int,
                 part: int) -> None:
    """ConfigError unless the bundle is addressed as expected and holds exactly the circuit's
    items with their lengths (part 1: the vectors and "s1"; part 2: "s2")."""
    lengths = circuit.item_lengths()
    labels = (*circuit.vector_labels, "s1") if part == 1 else ("s2",)
    want = {lab: lengths[lab] for lab in labels}
    if (body.client, body.server, body.part) != (client, server, part):
        raise ConfigError(f"bundle addressed to ({body.client}, {body.server}, {body.part}), "
                          f"expected ({client}, {server}, {part})")
    if len(body.labels) != len(want) or dict(zip(body.labels, body.lengths,
                                                 strict=True)) != want:
        raise ConfigError(f"bundle items {dict(zip(body.labels, body.lengths, strict=True))}, "
                          f"expected {want}")


@dataclass(slots=True)
class _Upload:
    """A part-1 upload opened as a stream: ``open`` reads its header and small items, the pass
    reads its long vector, ``authentic`` then checks tag and commitment, and ``stored`` replaces
    the consumed stream by a ``StoredVector`` that reads the upload again when needed."""

    server: Server
    client: int
    sealed: bytes | memoryview
    committed: bytes
    hasher: Any = field(default_factory=commitment_hasher)
    streams: list[PackedStream] = field(default_factory=list)
    reader: Reader | None = None

    def _read(self, observe: Observer | None) -> tuple[Reader, ShareBundle]:
        s = self.server
        reader = s.opener(self.sealed, context_of(s.session, self.client, s.j, 1), observe)
        return reader, read_bundle(reader, s.clock)

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
                s.drain()  # reads what the pass left, and checks the stream's encoding
            self.reader.verify()
        except Exception:  # noqa: BLE001 - any failure to authenticate is the client's claim
            return False
        return bool(self.hasher.digest() == self.committed)

    def stored(self, shares: ClientShares) -> ClientShares:
        """``shares`` with each streamed vector replaced by a re-readable ``StoredVector``."""
        if not any(isinstance(v, PackedStream) for v in shares.vectors):
            return shares
        labels = self.server.circuit.vector_labels
        vectors = tuple(StoredVector(v.n, partial(self.load, lab))
                        if isinstance(v, PackedStream) else v
                        for lab, v in zip(labels, shares.vectors, strict=True))
        return ClientShares(vectors, shares.scalars1, shares.scalars2)

    def load(self, label: str) -> FieldVec:
        """Vector ``label`` read again from the stored upload (the bytes the pass read)."""
        _, body = self._read(None)
        v = dict(zip(body.labels, body.vectors, strict=True))[label]
        # as the pass read it, canonical or not (a rollback must subtract exactly that)
        return v.unpack(strict=False) if isinstance(v, PackedStream) else as_field(v)


class Server:
    """Committee member ``j`` of m (threshold t) in one aggregation (one round)."""

    def __init__(self, j: int, circuit: Circuit, *, m: int, t: int, session: bytes,
                 secrets: SecretSource, sealer: Sealer, opener: Opener,
                 store: BundleStore | None = None, clock: Clock = lambda: 0.0,
                 party: str | None = None, zero: str = "cdi") -> None:
        self.j, self.m, self.t, self.circuit = j, m, t, circuit
        #: how degree-2t openings are re-randomized: "cdi" (PRZS keys, ``mpc.przs``) or
        #: "dealt" (zero sharings the members deal, ``mpc.dealt``; the driver runs them)
        self.zero = zero
        #: binds every envelope to the task and round (protocol.md §2; issue: AEAD contexts)
        self.session = session
        self.party = party or f"server:{j}"
        self.sealer, self.opener, self.clock = sealer, opener, clock
        self.store: BundleStore = store if store is not None else MemoryStore()
        #: this server's own decoding coin: the coefficients that locate bad shares (§3.1) are
        #: private, so no other server can aim an error at the combination it decodes
        self.coin = secrets.prg(self.party, "rs-location", session)
        self._przs = secrets.prg(self.party, "przs-keys", session)
        self.keys: dict[KeySet, bytes] = {}
        self._dealer = secrets.prg(self.party, "dealt-zero", session)
        #: label → this member's own dealing (kept to reveal it in a dispute)
        self.dealings: dict[str, Dealing] = {}
        #: label → dealer → this member's B + 1 shares of that dealer's zero sharings
        self.dealt: dict[str, dict[int, FieldVec]] = {}
        #: label → dealer → the payload it dealt this member (kept to reveal it, §3.4)
        self.dealt_payloads: dict[str, dict[int, bytes]] = {}
        #: label → this member's extracted zero-sharing coordinates (dealt scheme)
        self.zero_masks: dict[str, FieldVec] = {}
        #: key sets left out of every mask (some member never received their key)
        self.przs_skip: set[KeySet] = set()
        self.acc = circuit.new_accumulator()
        #: (client, part) → every commitment the client posted for that part (servers by
        #: index, then the public blob's, if any); immutable once accepted
        self.commitments: dict[tuple[int, int], tuple[bytes, ...]] = {}
        self.part2: dict[int, bytes | memoryview] = {}
        self.blob2: dict[int, bytes | memoryview] = {}
        self.check_zero: FieldVec = np.zeros(0, np.uint64)
        self.client_index: dict[int, int] = {}
        self.cheaters: set[int] = set()
        self.seconds = 0.0
        #: seconds by kind of work (transport: open and verify uploads; compute: expansion
        #: and the fused pass; openings: exchange and decoding per client; final: of the
        #: aggregate; round: PRZS)
        self.breakdown = {"transport": 0.0, "compute": 0.0, "openings": 0.0, "final": 0.0,
                          "round": 0.0}
        self._lock = threading.Lock()
        self._scratch: dict[int, Scratch] = {}

    def charge(self, kind: str, dt: float) -> None:
        """Add ``dt`` seconds of work of ``kind`` (thread safe: local work and openings may
        run on two threads)."""
        with self._lock:
            self.seconds += dt
            self.breakdown[kind] += dt

    # -- 1. PRZS set-up (Cramer–Damgård–Ishai) -----------------------------------------------
    def deal_przs(self) -> list[tuple[int, bytes | memoryview]]:
        """Draw k_A for every key set A this server leads (its first member) and seal it to
        A's other members: (receiver, sealed) pairs."""
        out: list[tuple[int, bytes | memoryview]] = []
        if self.zero == "dealt":
            return out  # no PRZS keys: the masks are dealt once the lengths are known
        check_cdi_size(self.m, self.t)
        for a in key_sets(self.m, self.t):
            if a[0] != self.j:
                continue
            key = self._przs.seed()
            self.keys[a] = key
            for r in a[1:]:
                out.append((r, self.sealer(r, key, self._przs_context(a), None)))
        return out

    def _przs_context(self, a: KeySet) -> bytes:
        return self.session + b"/przs/" + ",".join(map(str, a)).encode()

    def receive_przs(self, sender: int, sealed: bytes | memoryview) -> None:
        """Keep the key of the set led by ``sender`` that this envelope opens for (each
        context names its set, so an envelope opens for one set only)."""
        for a in key_sets(self.m, self.t):
            if a[0] != sender or self.j not in a or a in self.keys:
                continue
            try:
                key = read_all(self.opener(sealed, self._przs_context(a), None))
            except Exception:  # noqa: BLE001 - not this set's envelope
                continue
            if len(key) != 32:
                raise ProtocolViolation(Reject.BAD_BUNDLE, sender, f"PRZS key of {len(key)} B")
            self.keys[a] = key
            return
        raise ProtocolViolation(Reject.DUPLICATE if any(
            a[0] == sender and self.j in a for a in self.keys) else Reject.BAD_BUNDLE,
            sender, "no PRZS key set of this sender opens with this envelope")

    def missing_przs(self) -> list[KeySet]:
        """Key sets this server belongs to and holds no key for."""
        if self.zero == "dealt":
            return []
        return [a for a in key_sets(self.m, self.t) if self.j in a and a not in self.keys]

    # -- 2. uploads -------------------------------------------------------------------------
    def accept_upload(self, client: int, part: int, commitments: Sequence[bytes],
                      sealed: bytes | memoryview | None,
                      blob: bytes | memoryview | None = None, *,
                      blob_checked: bool = False) -> None:
        """Keep a client's upload of ``part``: its sealed bundle for this server (None: it
        sent none) and the public masked blob if any, with the client's commitments to every
        server's bundle (then the blob's). Immutable: a second upload of the same part is a
        ProtocolViolation(DUPLICATE). A blob is kept only if it is the committed one
        (``blob_checked``: the caller hashed it already). The bundle's own hash is checked
        when it is read (``local_batch``)."""
        key = (client, part)
        if key in self.commitments:
            raise ProtocolViolation(Reject.DUPLICATE, client,
                                    f"a second part-{part} upload (uploads are immutable)")
        if len(commitments) not in (self.m, self.m + 1) or any(len(c) != 32
                                                               for c in commitments):
            raise ProtocolViolation(Reject.HASH_MISMATCH, client,
                                    f"{len(commitments)} commitments, expected {self.m} "
                                    f"or {self.m + 1}")
        self.commitments[key] = tuple(bytes(c) for c in commitments)
        if blob is not None and len(commitments) > self.m and (
                blob_checked or commitment_of(blob) == commitments[self.m]):
            if part == 2:
                self.blob2[client] = blob
            else:
                self.store.put((client, -1, 1), blob)
        if sealed is None:
            return  # the client sent nothing for this server: a Failure at the pass
        if part == 2:
            self.part2[client] = sealed
        else:
            self.store.put((client, self.j, 1), sealed)

    def committed(self, client: int, part: int, server: int | None = None) -> bytes | None:
        """The client's commitment to ``server``'s bundle (default: this server's) or None."""
        got = self.commitments.get((client, part))
        return None if got is None else got[self.j if server is None else server]

    def blob_commitment(self, client: int, part: int) -> bytes | None:
        got = self.commitments.get((client, part))
        return got[self.m] if got is not None and len(got) > self.m else None

    def drop(self, client: int) -> None:
        """Forget everything of ``client`` (its uploads were not bound on chain)."""
        for part in (1, 2):
            self.commitments.pop((client, part), None)
        self.part2.pop(client, None)
        self.blob2.pop(client, None)
        self.store.discard((client, self.j, 1))
        self.store.discard((client, -1, 1))

    def forget(self, client: int) -> None:
        """Drop the stored part-1 upload of ``client`` (after its verdict)."""
        self.store.discard((client, self.j, 1))

    # -- 3. public randomness -----------------------------------------------------------------
    def begin(self, clients: Sequence[int]) -> None:
        """The PRZS masks of every client's check values (the circuit's coins are set)."""
        t0 = self.clock()
        self.client_index = {c: k for k, c in enumerate(clients)}
        g = check_width(self.circuit)
        if self.zero == "dealt":  # the driver deals the masks (``set_check_zero``)
            self.check_zero = np.zeros(len(clients) * g, np.uint64)
            self.charge("round", self.clock() - t0)
            return
        self.przs_skip = set(self.missing_przs())
        self.check_zero = zero_share(self.keys, self.j, m=self.m, t=self.t, label="checks",
                                     length=len(clients) * g, skip=self.przs_skip)
        self.charge("round", self.clock() - t0)

    def skip_przs(self, sets: Collection[KeySet]) -> None:
        """Leave out of every later mask the key sets some member reported it never received
        (all members leave out the same sets, so the masks still sum to zero)."""
        if set(sets) <= self.przs_skip or self.zero == "dealt":
            return
        t0 = self.clock()
        self.przs_skip |= set(sets)
        g = check_width(self.circuit)
        self.check_zero = zero_share(self.keys, self.j, m=self.m, t=self.t, label="checks",
                                     length=len(self.client_index) * g, skip=self.przs_skip)
        self.charge("round", self.clock() - t0)

    # -- 4. local work per batch --------------------------------------------------------------
    def local_batch(self, clients: Sequence[int], slot_base: int = 0) -> list[Local]:
        """The fused pass over a batch's uploads, timed on the thread that runs it.

        Part-1 vectors stay in their envelopes until the pass reads them chunk by chunk; each
        envelope is authenticated and checked against its commitment after the pass, and a
        client whose upload fails that has its tentative contribution taken out again (the
        same bytes, read again) and gets a :class:`Failure`."""
        t0 = self.clock()
        opened = [self._open_shares(c, slot_base + k) for k, c in enumerate(clients)]
        t1 = self.clock()
        good = [got[0] for got in opened if not isinstance(got, Failure)]
        results = iter(self.circuit.server_process_batch(good, self.acc) if good else [])
        t2 = self.clock()
        out: list[Local] = []
        for got in opened:
            if isinstance(got, Failure):
                out.append(got)
                continue
            shares, upload = got
            res = next(results)
            if upload.authentic():
                out.append((upload.stored(shares), res))
            else:
                self.circuit.server_rollback(upload.stored(shares), res, self.acc)
                out.append(Failure(1, "part-1 upload does not authenticate or is not the "
                                      "committed one"))
        t3 = self.clock()
        streamed = sum(got[1].read_seconds() for got in opened if not isinstance(got, Failure))
        self.charge("transport", t1 - t0 + streamed + t3 - t2)
        self.charge("compute", t2 - t1 - streamed)
        return out

    def _slot(self, slot: int) -> Scratch:
        got = self._scratch.get(slot)
        if got is None:
            got = self._scratch[slot] = Scratch()
        return got

    def _open_shares(self, client: int, slot: int) -> tuple[ClientShares, _Upload] | Failure:
        """This server's shares of the client, or the Failure it would claim. Part 2 (small)
        is opened and checked against its commitment here; part 1 is opened as a stream whose
        long vector the pass reads in place, and ``_Upload`` checks it after the pass."""
        b2 = self.part2.get(client)
        sealed1 = self.store.get((client, self.j, 1))
        committed1, committed2 = self.committed(client, 1), self.committed(client, 2)
        if sealed1 is None or committed1 is None:
            return Failure(1, "no part-1 upload")
        if b2 is None or committed2 is None:
            return Failure(2, "no part-2 upload")
        try:
            body2 = self.open_committed(client, self.j, 2, b2, self.opener)
        except Exception as e:  # noqa: BLE001 - any failure to open is the claim
            return Failure(2, f"part-2 upload does not open: {e}")
        try:
            upload = _Upload(self, client, sealed1, committed1)
            body1 = upload.open()
            check_layout(self.circuit, body1, client, self.j, 1)
            items = [dict(zip(body.labels, self._items(body, slot), strict=True))
                     for body in (body1, body2)]
        except Exception as e:  # noqa: BLE001 - any failure to open is the claim
            return Failure(1, f"part-1 upload does not open: {e}")
        vectors = tuple(items[0][label] for label in self.circuit.vector_labels)
        return ClientShares(vectors, as_field(items[0]["s1"]), as_field(items[1]["s2"])), upload

    def open_committed(self, client: int, server: int, part: int,
                       sealed: bytes | memoryview, opener: Opener) -> ShareBundle:
        """Open, hash-check and parse the client's whole part-``part`` bundle to ``server``:
        ConfigError (or the envelope's error) unless it is the committed one, authenticates
        and is well formed (part 2 here; any part for a dispute's re-sent envelope)."""
        hasher = commitment_hasher()
        raw = read_all(opener(sealed, context_of(self.session, client, server, part),
                              hasher.update))
        if hasher.digest() != self.committed(client, part, server):
            raise ConfigError(f"part-{part} upload is not the committed one")
        body = decode_bundle(raw, packed=True)
        check_layout(self.circuit, body, client, server, part)
        return body

    def _items(self, body: ShareBundle, slot: int) -> list[ShareVector]:
        """The share vectors of one decoded bundle (masked bundles need their public blob; a
        seeded server expands part 1 as the pass reads it, or into its reused per-slot buffers
        when the circuit does not stream)."""
        if body.seed is not None and body.part == 1 and self.circuit.streams:
            seed = body.seed
            return [SeededStream(seed, lab, n)
                    for lab, n in zip(body.labels, body.lengths, strict=True)]
        if body.seed is not None and body.part == 1:
            bufs = [self._slot(slot).array(f"expansion/{k}", (n + 2,))
                    for k, n in enumerate(body.lengths)]
            return list(body.shares(out=bufs))
        if body.masked_hash is None:
            return body.shares()
        blob = (self.store.get((body.client, -1, 1)) if body.part == 1
                else self.blob2.get(body.client))
        # the blob was checked against the client's public commitment when it was accepted
        if blob is None or body.masked_hash != self.blob_commitment(body.client, body.part):
            raise ConfigError("masked bundle without its committed public blob")
        if body.part == 1 and self.circuit.streams:
            keys = dict(body.keys)
            return [MaskedStream(c, keys, self.j, m=self.m, label=lab)
                    for c, lab in zip(masked_views(blob, body.lengths), body.labels,
                                      strict=True)]
        return list(body.shares(decode_masked(blob, body.lengths), self.m))

    def rollback(self, shares: ClientShares, local: LocalResult) -> None:
        """Undo a rejected client's tentative contribution."""
        self.circuit.server_rollback(shares, local, self.acc)

    # -- 5. openings --------------------------------------------------------------------------
    @staticmethod
    def consistency_share(local: LocalResult) -> FieldVec:
        """What this server sends in the client's consistency opening (degree t)."""
        return np.array([local.consistency % P], np.uint64)

    def check_share(self, client: int, local: LocalResult) -> FieldVec:
        """Its re-randomized share of the client's check values and revealed values (degree
        2t, PRZS added)."""
        g = check_width(self.circuit)
        row = self.client_index[client] * g
        vals = np.array(local.checks, dtype=np.uint64)
        out: FieldVec = (vals + self.check_zero[row:row + g]) % _P
        return out

    def decode(self, view: Mapping[int, FieldVec], degree: int) -> Opened:
        """Decode an opening from the shares this server received (and its own), leaving out
        servers it has identified; its private coin locates errors (ReconstructionError when
        they are detected but cannot be corrected)."""
        servers = sorted(j for j in view if j not in self.cheaters)
        mat = (np.stack([view[j] for j in servers]) if servers else np.zeros((0, 1), np.uint64))
        return decode(servers, mat, degree, self.coin)

    def final_shares(self) -> list[FinalShare]:
        """Its shares of the values opened at the end, degree-2t ones re-randomized."""
        out = []
        for fs in self.circuit.final_shares(self.acc):
            vals = fs.values
            if fs.degree_2t and self.zero == "dealt":
                vals = (vals + self.zero_masks[f"final/{fs.kind.value}"]) % _P
            elif fs.degree_2t:
                t0 = self.clock()
                zero = zero_share(self.keys, self.j, m=self.m, t=self.t,
                                  label=f"final/{fs.kind.value}", length=vals.shape[0],
                                  skip=self.przs_skip)
                vals = (vals + zero) % _P
                self.charge("round", self.clock() - t0)
            out.append(FinalShare(fs.kind, vals, fs.degree_2t))
        return out

    def final_zero_lengths(self) -> dict[str, int]:
        """The zero-sharing lengths the degree-2t final openings need (dealt scheme)."""
        return {f"final/{fs.kind.value}": int(fs.values.shape[0])
                for fs in self.circuit.final_shares(self.acc) if fs.degree_2t}

    # -- 5b. dealt zero sharings (mpc.dealt; issue 13) ---------------------------------------
    def _dealt_context(self, label: str, dealer: int) -> bytes:
        return self.session + b"/dealt/" + label.encode() + b"/" + str(dealer).encode()

    def deal_zero(self, label: str, length: int) -> tuple[dict[int, bytes], list[
            tuple[int, bytes | memoryview]]]:
        """Deal this member's zero sharings for ``length`` coordinates: its public
        commitments, and (receiver, sealed payload) pairs for the other members (its own
        payload it keeps)."""
        t0 = self.clock()
        d = deal(self.j, m=self.m, t=self.t, label=label, length=length, prg=self._dealer)
        if label in self.dealings:  # a fresh dealing (after an identification: no cheater)
            self.dealt[label] = {}
            self.dealt_payloads[label] = {}
        self.dealings[label] = d
        self.dealt.setdefault(label, {})
        self.dealt[label][self.j] = share_of(
            d.payloads[self.j], dealer=self.j, receiver=self.j, m=self.m, t=self.t,
            label=label, length=length)
        out = [(r, self.sealer(r, p, self._dealt_context(label, self.j), None))
               for r, p in d.payloads.items() if r != self.j]
        self.charge("round", self.clock() - t0)
        return dict(d.commitments), out

    def receive_zero(self, label: str, length: int, dealer: int,
                     sealed: bytes | memoryview | None, committed: bytes | None,
                     revealed: bytes | None = None) -> bool:
        """Keep this member's shares of ``dealer``'s dealing from its sealed payload (or the
        payload the dealer revealed publicly after a complaint): False — a complaint — when it
        does not open, is not the committed one or is malformed."""
        t0 = self.clock()
        try:
            payload = revealed if revealed is not None else (
                None if sealed is None else read_all(self.opener(
                    sealed, self._dealt_context(label, dealer), None)))
            ok = payload is not None and dealt_commitment(dealer, self.j, label,
                                                          payload) == committed
            if ok and payload is not None:
                self.dealt.setdefault(label, {})[dealer] = share_of(
                    payload, dealer=dealer, receiver=self.j, m=self.m, t=self.t, label=label,
                    length=length)
                self.dealt_payloads.setdefault(label, {})[dealer] = bytes(payload)
        except Exception:  # noqa: BLE001 - any failure to open is the complaint
            ok = False
        self.charge("round", self.clock() - t0)
        return ok

    def zero_check_values(self, label: str, coin: bytes | Mapping[int, bytes]) -> FieldVec:
        """v_ij for every dealer i (0 for dealers it holds nothing of): mpc.dealt step 2.
        ``coin``: one for every dealer, or dealer → its own (the per-peer protocol)."""
        t0 = self.clock()
        held = self.dealt.get(label, {})
        coins = coin if isinstance(coin, Mapping) else dict.fromkeys(held, coin)
        out = np.array([check_value(held[i], coins[i], i) if i in held and i in coins else 0
                        for i in range(self.m)], np.uint64)
        self.charge("round", self.clock() - t0)
        return out

    def reveal_dealing(self, label: str) -> dict[int, bytes] | None:
        """Every payload of this member's dealing, revealed in a dispute (step 3)."""
        d = self.dealings.get(label)
        return None if d is None else dict(d.payloads)

    def dealt_payload(self, label: str, dealer: int) -> bytes | None:
        """The payload ``dealer`` dealt this member for ``label`` (its own included)."""
        if dealer == self.j and label in self.dealings:
            return bytes(self.dealings[label].payloads[self.j])
        return self.dealt_payloads.get(label, {}).get(dealer)

    def finish_zero(self, label: str, length: int, drop: Collection[int] = ()) -> None:
        """Extract this member's ``length`` zero-sharing coordinates (step 4); dealers it
        holds nothing of, or in ``drop`` (identified, excluded), count as zero rows."""
        t0 = self.clock()
        held = {i: v for i, v in self.dealt.pop(label, {}).items() if i not in drop}
        n = batch_length(length, self.m, self.t) + 1
        rows = np.stack([held.get(i, np.zeros(n, np.uint64)) for i in range(self.m)])
        self.zero_masks[label] = extract(rows, m=self.m, t=self.t, length=length)
        self.charge("round", self.clock() - t0)

    # -- 6. disputes (§3.4) -------------------------------------------------------------------
    def verify_claim(self, client: int, part: int, server: int,
                     sealed: bytes | memoryview | None, opener: Opener) -> bool:
        """Judge ``server``'s claim that the client's part-``part`` upload to it does not open:
        True (the claim holds, the client is to blame) unless ``sealed`` — as the client
        re-sent it, with ``opener`` built from the ephemeral secret it revealed — is the
        committed bundle, authenticates and parses as a well-formed bundle for ``server``."""
        if sealed is None or self.committed(client, part, server) is None:
            return True
        try:
            self.open_committed(client, server, part, sealed, opener)
        except Exception:  # noqa: BLE001 - it does not open: the claim holds
            return True
        return False

    def recompute_consistency(self, client: int, server: int,
                              uploads: Mapping[int, bytes | memoryview],
                              openers: Mapping[int, Opener]) -> int | None:
        """``server``'s consistency value as its committed bundles (re-sent by the client and
        opened with the ephemerals it revealed, one opener per part) determine it; None when
        they do not open."""

        def opener(sealed: bytes | memoryview, context: bytes,
                   observe: Observer | None) -> Reader:
            return openers[int(context.rsplit(b"/", 1)[1])](sealed, context, observe)

        try:
            other = Server(server, self.circuit, m=self.m, t=self.t, session=self.session,
                           secrets=_REPLAY, sealer=self.sealer, opener=opener)
            for part in (1, 2):
                other.commitments[(client, part)] = self.commitments[(client, part)]
            blob1 = self.store.get((client, -1, 1))
            if blob1 is not None:
                other.store.put((client, -1, 1), blob1)
            if client in self.blob2:
                other.blob2[client] = self.blob2[client]
            other.store.put((client, server, 1), uploads[1])
            other.part2[client] = uploads[2]
            got = other._open_shares(client, 0)
            if isinstance(got, Failure):
                return None
            shares, upload = got
            plain = ClientShares(tuple(as_field(v) for v in shares.vectors), shares.scalars1,
                                 shares.scalars2)
            if not upload.authentic():
                return None
            return self.circuit.server_process(plain, None).consistency % P
        except Exception:  # noqa: BLE001 - unusable: the client cannot prove its bundle
            return None


_REPLAY = SeededSecrets(bytes(32))
"""A verifier's replay of another server's bundle deals no keys and decodes nothing: its
secrets are never used, so a fixed public source serves."""


def opening_kind_charge(kind: OpeningKind) -> str:
    """The breakdown entry an opening's time goes to: per-client openings, or the final ones."""
    return "final" if kind in (OpeningKind.AGGREGATE, OpeningKind.WEIGHT_SUM) else "openings"
