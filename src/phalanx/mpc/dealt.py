"""Member-dealt zero sharings of degree 2t with hyper-invertible extraction (issue 13).

The re-randomization of degree-2t openings (protocol.md §3.1) with cost polynomial in m, beside
CDI PRZS (``mpc.przs``, C(m − 1, t)·t expansions per server). After Damgård–Nielsen 2007
("Scalable and unconditionally secure multiparty computation", §3 random double sharings):

1. **Deal.** Every member i draws, from its own secrets, B + 1 random polynomials Z_i(X) of
   degree ≤ 2t with Z_i(0) = 0 (B = ⌈L/(m − t)⌉ for L zero coordinates; the last one only
   blinds the check). Such a polynomial is fixed by its values at the 2t ``seeded_holders``, so
   those members get a 32-byte seed each and the other m − 2t an explicit vector (B + 1 field
   elements, a combination of the seeded ones). Every payload carries a 32-byte salt; the dealer
   publishes SHA-256 commitments to all of them before anything is checked.
2. **Check**, with a coin drawn after every commitment is fixed (``check_coin``): each member
   sends v_ij = Σ_k c_{i,k}·Z_{i,k}(α_j) + Z_{i,B}(α_j) for every dealer i. If dealer i dealt
   B + 1 zero sharings of degree 2t on the honest members, v_i is one (honest shares) and opens
   to 0; otherwise the combination is not one except with probability 1/p (the coefficients
   come after the dealing, Schwartz–Zippel). The blinding polynomial makes v_i independent of
   the B data polynomials, so the check reveals nothing about them.
3. **Blame** (identification, protocol.md §3.4): when some receiver cannot decode v_i as a
   zero codeword with no error, dealer i reveals every payload; anyone re-checks them against
   the public commitments and recomputes every v_ij: the dealer is named if its payloads are
   missing, do not match, or are not a zero sharing of degree 2t; else every member that sent
   a v_ij other than the recomputed one is named. The named members are excluded and everyone
   deals again (a revealed dealing is no longer secret); each retry names at least one
   corrupt member, so there are at most t.
4. **Extract.** Member j's output is M·(Z_{0,k}(α_j), …, Z_{m−1,k}(α_j)) for each data
   coordinate k, M the (m − t) × m Vandermonde matrix M[r][i] = α_i^r: every (m − t) × (m − t)
   column block is invertible, so the m − t outputs are uniform given the ≤ t corrupt dealers'
   polynomials (each output is a zero sharing of degree 2t as a linear combination of them).

Cost per member for L zero coordinates: 2t/(m − t)·L seed expansions, (m − 2t)·2t/(m − t)·L
multiply-adds to deal, m·L to extract, plus one opening of m scalars per dealing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import comb

import numpy as np

from phalanx.errors import ConfigError
from phalanx.mpc.field import FieldVec, P, combine_rows, dot, lagrange_coeffs
from phalanx.mpc.messages import pack61, unpack61
from phalanx.mpc.packing import packed_words
from phalanx.mpc.prg import SEED_BYTES, Prg, derive, expand
from phalanx.mpc.rs import is_codeword
from phalanx.mpc.shamir import point

SALT_BYTES = 32
_SEEDED, _EXPLICIT = 1, 2
SCHEMES = ("cdi", "dealt")
DEALT_OVERHEAD = 6.0
"""Measured cost of a dealt unit over a CDI unit (sealing, unpacking, the check, Python per
dealer): fltrust n = 100, d = 10^5, per-server "round" seconds 0.009 CDI vs 0.029 dealt at
(5, 1), 0.031 vs 0.035 at (7, 2), 4.17 vs 0.045 at (13, 4) (docs/performance.md)."""


def seeded_holders(dealer: int, m: int, t: int) -> tuple[int, ...]:
    """The 2t members whose shares of ``dealer``'s polynomials are seeds: the dealer and the
    2t − 1 after it (cyclically), so every member holds seeds of exactly 2t dealers."""
    return tuple(sorted((dealer + k) % m for k in range(2 * t)))


def batch_length(length: int, m: int, t: int) -> int:
    """B: the data coordinates each dealer deals for ``length`` zero coordinates."""
    return -(-length // (m - t))


def _explicit_rows(dealer: int, m: int, t: int) -> tuple[list[int], list[list[int]]]:
    """The members with explicit shares and, for each, the Lagrange weights on the seeded
    shares (through Z(0) = 0 and the 2t seeded points)."""
    held = seeded_holders(dealer, m, t)
    xs = [0] + [point(h) for h in held]
    others = [j for j in range(m) if j not in held]
    return others, [lagrange_coeffs(xs, point(j))[1:] for j in others]


def _seeded_share(seed: bytes, label: str, n: int) -> FieldVec:
    return expand(seed, n, "dealt", label)


def commitment(dealer: int, receiver: int, label: str, payload: bytes) -> bytes:
    """SHA-256 of one payload, bound to its dealer, receiver and label."""
    h = hashlib.sha256(b"phalanx/dealt-zero/v1")
    for part in (str(dealer).encode(), str(receiver).encode(), label.encode(), payload):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.digest()


@dataclass(frozen=True, slots=True)
class Dealing:
    """One dealer's payloads (receiver → bytes, its own included) and their commitments."""

    dealer: int
    label: str
    length: int
    payloads: Mapping[int, bytes]
    commitments: Mapping[int, bytes]


def deal(dealer: int, *, m: int, t: int, label: str, length: int, prg: Prg) -> Dealing:
    """Deal B + 1 random zero sharings of degree 2t (step 1), from the dealer's own ``prg``."""
    if m < 2 * t + 1:
        raise ConfigError(f"dealt zero sharing needs m={m} >= 2t+1={2 * t + 1}")
    n = batch_length(length, m, t) + 1
    payloads: dict[int, bytes] = {}
    seeds: dict[int, bytes] = {}
    for h in seeded_holders(dealer, m, t):
        seeds[h] = prg.seed()
        payloads[h] = prg.random_bytes(SALT_BYTES) + bytes([_SEEDED]) + seeds[h]
    others, weights = _explicit_rows(dealer, m, t)
    if others:
        rows = np.stack([_seeded_share(seeds[h], label, n) for h in sorted(seeds)])
        explicit = combine_rows(weights, rows)
        for j, vec in zip(others, explicit, strict=True):
            payloads[j] = prg.random_bytes(SALT_BYTES) + bytes([_EXPLICIT]) + pack61(vec)
    return Dealing(dealer, label, length, payloads,
                   {j: commitment(dealer, j, label, p) for j, p in payloads.items()})


def share_of(payload: bytes, *, dealer: int, receiver: int, m: int, t: int, label: str,
             length: int) -> FieldVec:
    """Receiver's B + 1 shares of ``dealer``'s polynomials from its payload (ConfigError when
    the payload is malformed or of the wrong kind for this receiver)."""
    n = batch_length(length, m, t) + 1
    seeded = receiver in seeded_holders(dealer, m, t)
    body = payload[SALT_BYTES + 1:]
    kind = payload[SALT_BYTES] if len(payload) > SALT_BYTES else -1
    if seeded and kind == _SEEDED and len(body) == SEED_BYTES:
        return _seeded_share(body, label, n)
    want = packed_words(n) * 8
    if not seeded and kind == _EXPLICIT and len(body) == want:
        vec = unpack61(body, n)
        if np.all(vec < np.uint64(P)):
            return vec
    raise ConfigError(f"dealt payload of {len(payload)} B from dealer {dealer} is malformed "
                      f"for receiver {receiver}")


def check_coin(session: bytes, label: str, commitments: Sequence[Mapping[int, bytes]]) -> bytes:
    """The check's coin: a hash of every dealer's commitments (fixed before it is drawn)."""
    h = hashlib.sha256(b"phalanx/dealt-zero/check/v1" + session + label.encode())
    for per in commitments:
        for j in sorted(per):
            h.update(j.to_bytes(4, "big") + per[j])
    return h.digest()


def check_value(share: FieldVec, coin: bytes, dealer: int) -> int:
    """v_ij = Σ_k c_{i,k}·share[k] + share[B] (step 2)."""
    coefs = expand(derive(coin, "dealer", dealer), share.shape[0] - 1, "coef")
    return (dot(coefs, share[:-1]) + int(share[-1])) % P


def is_zero_sharing(servers: Sequence[int], shares: FieldVec, t: int) -> bool:
    """Whether the rows (one per server) are shares of degree-2t polynomials that vanish at 0:
    the server list with the virtual point x = 0 (value 0) must be one codeword."""
    pts = [-1, *servers]  # point(-1) = 0
    rows = np.vstack([np.zeros((1, shares.shape[1]), np.uint64), shares])
    return bool(is_codeword(pts, rows, 2 * t))


def blame(dealing_revealed: Mapping[int, bytes] | None, commitments: Mapping[int, bytes], *,
          dealer: int, m: int, t: int, label: str, length: int, coin: bytes,
          reported: Mapping[int, Mapping[int, int]]) -> tuple[tuple[int, ...], bool]:
    """Step 3: who cheated in dealer ``dealer``'s check, and whether the dealing itself was
    bad. ``dealing_revealed``: the payloads the dealer revealed (None: it refused);
    ``reported``: receiver → sender → the v the sender sent it. ((dealer,), True) when its
    revealed dealing is not a committed zero sharing of degree 2t, else (every sender of a
    wrong v, False)."""
    if dealing_revealed is None or sorted(dealing_revealed) != list(range(m)):
        return (dealer,), True
    shares = []
    for j in range(m):
        payload = dealing_revealed[j]
        if commitment(dealer, j, label, payload) != commitments.get(j):
            return (dealer,), True
        try:
            shares.append(share_of(payload, dealer=dealer, receiver=j, m=m, t=t, label=label,
                                   length=length))
        except ConfigError:
            return (dealer,), True
    if not is_zero_sharing(list(range(m)), np.stack(shares), t):
        return (dealer,), True
    truth = [check_value(s, coin, dealer) for s in shares]
    return tuple(sorted({j for view in reported.values() for j, v in view.items()
                         if v != truth[j]})), False


def extraction_matrix(m: int, t: int) -> list[list[int]]:
    """M[r][i] = α_i^r mod p, (m − t) × m: every square column block is Vandermonde."""
    return [[pow(point(i), r, P) for i in range(m)] for r in range(m - t)]


def extract(shares: FieldVec, *, m: int, t: int, length: int) -> FieldVec:
    """Member's ``length`` zero-sharing coordinates from its m × (B + 1) dealt shares (row i:
    dealer i; the blinding column is dropped): step 4."""
    if shares.shape[0] != m:
        raise ConfigError(f"extraction needs one row per dealer, m={m}, got {shares.shape[0]}")
    out = combine_rows(extraction_matrix(m, t), shares[:, :-1])
    flat: FieldVec = out.reshape(-1)[:length].copy()
    return flat


def cost(scheme: str, m: int, t: int) -> float:
    """Work per member and zero coordinate, in PRG-word-equivalents (a 61-bit multiply-add
    costs about one AES-CTR word here): CDI expands t words per key set it belongs to and adds
    each in with a multiply; dealing expands 2t/(m − t) words, multiplies (m − 2t)·2t/(m − t)
    and extracts with m."""
    if scheme == "cdi":
        return 2.0 * comb(m - 1, t) * t
    if scheme == "dealt":
        return (2 * t + (m - 2 * t) * 2 * t) / (m - t) + m
    raise ConfigError(f"zero-sharing scheme {scheme!r} must be one of {SCHEMES}")


def choose_scheme(m: int, t: int) -> str:
    """The cheaper scheme at (m, t): CDI while C(m − 1, t)·t stays below the dealt cost times
    its measured overhead (CDI for t = 1 up to m = 21 and for (7, 2), dealt from (9, 2) on)."""
    dealt = DEALT_OVERHEAD * cost("dealt", m, t)
    return "cdi" if cost("cdi", m, t) <= dealt else "dealt"


def blame_revealed(revealed: Mapping[int, bytes], commitments: Mapping[int, bytes], *,
                   dealer: int, m: int, t: int, label: str, length: int, coin: bytes,
                   reported: Mapping[int, int]) -> tuple[tuple[int, ...], bool]:
    """Step 3 when only some members reveal (the per-peer protocol: each member reveals the
    payload it was dealt; honest ones always do). ``revealed``: member → its payload;
    ``reported``: member → the v it sent. A revealed payload that is not the committed one
    names its revealer (the commitments bind the dealer, so only the revealer forged it);
    committed payloads that do not parse or are not a zero sharing of degree 2t name the
    dealer (the virtual point 0 makes 2t + 1 revealed shares a test); else every member whose
    v is not the recomputed one, or that sent a v and revealed nothing, is named."""
    forged = sorted(j for j, p in revealed.items() if commitment(dealer, j, label, p)
                    != commitments.get(j))
    if forged:
        return tuple(forged), False
    shares = {}
    for j, payload in sorted(revealed.items()):
        try:
            shares[j] = share_of(payload, dealer=dealer, receiver=j, m=m, t=t, label=label,
                                 length=length)
        except ConfigError:
            return (dealer,), True
    seats = sorted(shares)
    if len(seats) >= 2 * t + 1 and not is_zero_sharing(seats, np.stack([shares[j]
                                                                        for j in seats]), t):
        return (dealer,), True
    truth = {j: check_value(s, coin, dealer) for j, s in shares.items()}
    return tuple(sorted(j for j, v in reported.items() if truth.get(j, -1) != v)), False
