"""The secure form of rules on norm-bounded real vectors: fedavg-nb, cc and fltrust (§3.2–3.3).

Encoding: y = round_stoch(x·2^f) and the shared vector is 2y (even integers, so the projection
rows with coefficients ±½ are integers: R_l = Σ_j ±y_j). Bounds, with N = ⌊√(hi/4)⌋ + 1:
- projection: T = 2^(K_row − 1) ≥ 6N (an honest row is a sum of ±y_j, sub-Gaussian with
  variance ‖y‖² ≤ N², so it exceeds T with probability ≤ 2·exp(−18) per row); a coordinate with
  |2y_j| ≥ 2T fails each of the k rows with probability ≥ ½, so it passes all k w.p. ≤ 2^-k.
- no wrap: d·(2T)² + 2·hi < p/2 is REQUIRED (ConfigError otherwise), so Σ (2y_j)² and ⟨2y, g⟩
  are the true integers and a range proof cannot be passed by a wrapped value. (protocol.md
  asks for d·(2T)² < 2^59; with a 6σ row bound that would cap d·2^{2f} near 2^47, so we use the
  exact no-wrap condition; honest opened values stay far below 2^59.)
- norm: Σ(2y_j)² ≤ hi = 4⌊sq_max·2^{2f}⌋ (and ≥ lo = 4⌈sq_min·2^{2f}⌉ for fltrust), with no
  slack: exactly the plaintext rule's ‖x‖² ≤ sq_max on the decoded x = y·2^-f. Honest
  encodings land inside by construction (``encode``: stochastic rounding, then re-rounding of
  coordinates toward zero, or away from it for the floor, until within).
Part 1 scalars: [r, norm-proof bits, rule extras]; part 2: the k·K_row bits of R_l + T.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from math import ceil, floor, isqrt
from typing import Any

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ConfigError, Reject
from phalanx.mpc import field as F
from phalanx.mpc.checks import bits_of, norm_pass, norm_pass_batch
from phalanx.mpc.circuit import ClientSecrets, ClientShares, FinalShare, LocalResult
from phalanx.mpc.client_kernels import projection_rows, sum_sq
from phalanx.mpc.fixed import decode_fixed, encode_fixed_sq
from phalanx.mpc.messages import OpeningKind, as_field
from phalanx.mpc.prg import Prg, derive

P = F.P
ROW_SIGMAS = 6
"""T ≥ 6·‖y‖: an honest row exceeds T with probability ≤ 2·exp(−18) (Hoeffding)."""
MIN_ROWS = 64
"""k ≥ 64 projection rows: the beacon is public before the commitment deadline, so the last
client to commit can grind the coin (protocol.md §3.2, v1.1); 2^-64 per attempt."""
MAX_ROWS = 64
"""8 groups of 8 rows: the kernels' unrolled four-Russians scatter handles at most 8 groups."""


def check_rows(rows: int) -> None:
    """ConfigError unless ``rows`` is a multiple of 8 in [MIN_ROWS, MAX_ROWS]."""
    if rows < MIN_ROWS:
        raise ConfigError(f"rows={rows} is below {MIN_ROWS}: the last client to commit can grind "
                          "the coin, so protocol.md §3.2 (v1.1) needs k >= 64 projection rows")
    if rows % 8 or rows > MAX_ROWS:
        raise ConfigError(f"rows={rows} must be a multiple of 8 (groups of 8 rows) and at most "
                          f"{MAX_ROWS}")


@dataclass(slots=True)
class VectorAcc:
    """A server's running aggregate: Σ (w_i·)x_i and, for fltrust, Σ w_i."""

    vec: F.FieldVec
    weight_sum: int = 0


@dataclass(frozen=True, slots=True)
class RangeProof:
    """One proof v ∈ [0, 2^width) of a value linear (or quadratic) in the shares."""

    width: int


@dataclass(slots=True)
class _Public:
    patterns: NDArray[np.uint8] | None = None
    coin1: bytes = b""
    weights: dict[str, F.FieldVec] = field(default_factory=dict)


class NormCircuit:
    """Shares 2y, proves |coordinates| bounded (projection) and the norm in range (exactly)."""

    vector_labels: tuple[str, ...] = ("x",)
    streams = True  # the fused pass reads x chunk by chunk (mpc.stream)

    def __init__(self, *, dim: int, frac_bits: int, sq_max: Fraction, sq_min: Fraction | None,
                 norm_reason: Reject, rows: int = MIN_ROWS) -> None:
        """``sq_max`` (and ``sq_min``): the rule's bounds on ‖x‖² as exact rationals (the plaintext
        rule's floats, converted exactly); the circuit checks them with no slack."""
        check_rows(rows)
        self.d, self.f, self.k = dim, frac_bits, rows
        scale = 1 << (2 * frac_bits)
        #: Σ y_j² ≤ H ⟺ ‖y·2^-f‖² ≤ sq_max exactly (Σ y_j² is an integer); hi = 4H for x = 2y
        self.hi = 4 * floor(sq_max * scale)
        n_bound = isqrt(self.hi // 4) + 1  # > ‖y‖ for every y that passes the norm check
        self.k_row = (ROW_SIGMAS * n_bound - 1).bit_length() + 1
        self.T = 1 << (self.k_row - 1)
        if dim * (2 * self.T) ** 2 + 2 * self.hi >= P // 2:
            raise ConfigError(
                f"d={dim} with frac_bits={frac_bits} and norm bound {float(sq_max) ** 0.5:g} "
                f"gives d·(2T)^2 = {dim * (2 * self.T) ** 2:.3g} with T={self.T}: squares could "
                "wrap mod p; lower frac_bits"
            )
        #: Σ y_j² ≥ L ⟺ ‖y·2^-f‖² ≥ sq_min exactly; lo = 4L
        self.lo = None if sq_min is None else 4 * max(0, ceil(sq_min * scale))
        self.k_norm = self.hi.bit_length()
        self.n_norm = 1 if sq_min is None else 2
        self.norm_reason = norm_reason
        self.check_reasons: tuple[Reject, ...] = (Reject.NOT_BINARY, norm_reason,
                                                  Reject.PROJECTION)
        self.client_reveals: tuple[str, ...] = ()
        self.pub = _Public()
        self.n_extra = 0  # fltrust's extra scalars before the bits

    # -- layout ---------------------------------------------------------------------------------
    def extra_bits(self) -> int:
        """Bits of the rule's extra range proofs (fltrust overrides)."""
        return 0

    def item_lengths(self) -> dict[str, int]:
        return {"x": self.d, "s1": self.n_scalars1(), "s2": self.n_scalars2()}

    def n_scalars1(self) -> int:
        return 1 + self.n_norm * self.k_norm + self.n_extra + self.extra_bits()

    def n_scalars2(self) -> int:
        return self.k * self.k_row

    def bit_positions1(self) -> slice:
        """Where the bits sit in part 1 (after r, and after the extra scalars)."""
        return slice(1, self.n_scalars1())

    # -- client ---------------------------------------------------------------------------------
    def encode(self, prepared: NDArray[np.float32], prg: Prg) -> F.FieldVec:
        """2y, y = round_stoch(x·2^f), moved into the norm range when rounding left it.

        The encoding pass also returns Σ (2y_j)² mod p, so the test costs no extra pass. When
        Σ y_j² > H (or < L), :meth:`_nudge` re-rounds coordinates that were rounded away from
        (toward) zero the other way, in a random order, until it is within: every y_j stays
        ⌊x_j·2^f⌋ or ⌈x_j·2^f⌉, and rounding every coordinate toward zero gives Σ y_j² ≤
        ‖x‖²·2^{2f}, so an input with ‖x‖² ≤ sq_max always ends within (docs/mpc.md,
        "Exact norm check").
        """
        x, sq = encode_fixed_sq(prepared, self.f, prg, lattice=2, saturate=True)
        sq_int = F.centered_int(sq)
        if sq_int > self.hi or (self.lo is not None and sq_int < self.lo):
            return self._nudge(prepared, x, prg)
        return x

    def _nudge(self, prepared: NDArray[np.float32], x: F.FieldVec, prg: Prg) -> F.FieldVec:
        """Re-round coordinates one step toward zero (Σ y² > H) or away from it (Σ y² < L), in
        a random order, until Σ y² is within [L, H] or no coordinate can move; an input with
        a coordinate of 2T or more (never honest: it fails the projection test) is left as
        it is. Exact int64 arithmetic: |y_j| < T, so Σ y_j² < d·T² < 2^60."""
        v = np.asarray(prepared, np.float64).reshape(-1) * 2.0**self.f  # exact (a power of 2)
        y = F.centered(x) // 2
        if y.size == 0 or int(np.abs(y).max()) >= self.T:
            return x
        total = int(np.dot(y, y))
        low = 0 if self.lo is None else self.lo // 4
        if low <= total <= self.hi // 4:
            return x
        mag = np.abs(y)
        if total > self.hi // 4:  # too long: the coordinates rounded away from zero, back
            movable = np.flatnonzero(mag > np.abs(v))
            gains = 2 * mag - 1
            need = total - self.hi // 4
            step = -np.sign(y)
        else:  # too short (fltrust's floor): the coordinates rounded toward zero, out
            movable = np.flatnonzero(mag < np.abs(v))
            gains = 2 * mag + 1
            need = low - total
            step = np.sign(v).astype(np.int64)
        order = movable[np.argsort(prg.field_elements(movable.size), kind="stable")]
        reach = np.cumsum(gains[order])
        take = order[:int(np.searchsorted(reach, need)) + 1]  # the first prefix reaching need
        y[take] += step[take]
        return F.from_signed(2 * y)

    def client_secrets(self, prepared: NDArray[np.float32], prg: Prg) -> ClientSecrets:
        return self.witness(self.encode(prepared, prg), prg)

    def norm_values(self, sq: int) -> list[int]:
        """The values the norm range proofs cover: hi − Σx² (and Σx² − lo)."""
        vals = [(self.hi - sq) % P]
        if self.lo is not None:
            vals.append((sq - self.lo) % P)
        return vals

    def witness(self, x: F.FieldVec, prg: Prg) -> ClientSecrets:
        """Part-1 scalars [r, rule extras, norm bits, extra bits]; Σ x_j² is one exact pass
        (``client_kernels.sum_sq``, equal to ``F.dot(x, x)``)."""
        sq = sum_sq(x)
        values, bits = self.extra_witness(x)
        scalars = [prg.field_element()] + values
        scalars += [int(b) for b in bits_of(self.norm_values(sq), self.k_norm)]
        scalars += bits
        return ClientSecrets((x,), np.array(scalars, np.uint64), x)

    def extra_witness(self, x: F.FieldVec) -> tuple[list[int], list[int]]:
        """The rule's extra scalars and their range-proof bits (fltrust overrides)."""
        return [], []

    def patterns(self, coin1: bytes) -> NDArray[np.uint8]:
        if self.pub.patterns is None or self.pub.coin1 != coin1:
            self.pub.patterns = Prg(derive(coin1, "rows")).sign_patterns(self.d, self.k // 8)
            self.pub.coin1 = coin1
        return self.pub.patterns

    def client_response(self, secrets: ClientSecrets, coin1: bytes) -> F.FieldVec:
        """The bits of R_l + T for the projection rows of ``coin1`` (protocol.md §3.2): exact
        int64 row sums of the centered coordinates, or the servers' mod-p pass when some
        coordinate is too large for them (the values are the same)."""
        x, patterns = secrets.private, self.patterns(coin1)
        rows = projection_rows(x, patterns)
        if rows is None:
            rows = norm_pass(x, patterns, None, None)[2]
        return bits_of([(r + self.T) % P for r in rows], self.k_row)

    # -- public randomness ------------------------------------------------------------------------
    def begin(self, coin1: bytes, coin2: bytes) -> None:
        self.patterns(coin1)
        g = Prg(derive(coin2, "weights"))
        n1, n2 = self.n_scalars1(), self.n_scalars2()
        w = self.pub.weights
        w["gamma"] = g.field_elements(self.k)
        w["cons1"] = g.field_elements(n1 - 1)
        w["cons2"] = g.field_elements(n2)
        w["bin1"] = g.field_elements(n1 - 1 - self.n_extra)
        w["bin2"] = g.field_elements(n2)
        w["pi"] = g.field_elements(self.k)
        w["lam"] = g.field_elements(12)
        pw = [int(w["pi"][r]) * (1 << b) % P for r in range(self.k) for b in range(self.k_row)]
        w["proj"] = np.array(pw, np.uint64)

    # -- server ---------------------------------------------------------------------------------
    def new_accumulator(self) -> VectorAcc:
        return VectorAcc(np.zeros(self.d, np.uint64))

    def weight_share(self, shares: ClientShares) -> int | None:
        return None

    def server_process(self, shares: ClientShares, acc: Any | None) -> LocalResult:
        return self.server_process_batch([shares], acc)[0]

    def server_process_batch(self, batch: Sequence[ClientShares],
                             acc: Any | None) -> list[LocalResult]:
        """One fused pass over a batch of clients' vectors (``checks.norm_pass_batch``), then
        each client's scalar checks."""
        weights = [self.weight_share(sh) for sh in batch]
        passes = norm_pass_batch([sh.vectors[0] for sh in batch],
                                 self.pub.patterns,  # type: ignore[arg-type]
                                 self.g0_small(), None if acc is None else acc.vec,
                                 weights=weights)
        if acc is not None:
            for weight in weights:
                if weight is not None:
                    acc.weight_sum = (acc.weight_sum + weight) % P
        return [self._local(sh, sq, gd, rows, weight)
                for sh, (sq, gd, rows), weight in zip(batch, passes, weights, strict=True)]

    def _local(self, shares: ClientShares, sq: int, gd: int, rows: list[int],
               weight: int | None) -> LocalResult:
        """A client's consistency and check shares from its pass sums and its scalars."""
        w = self.pub.weights
        s1, s2 = shares.scalars1, shares.scalars2
        gamma = [int(v) for v in w["gamma"]]
        cons = (int(s1[0]) + sum(g * r for g, r in zip(gamma, rows, strict=True))
                + F.dot(w["cons1"], s1[1:]) + F.dot(w["cons2"], s2)) % P
        bits1 = s1[1 + self.n_extra:]
        binary = (_binary(bits1, w["bin1"]) + _binary(s2, w["bin2"])) % P
        pi = [int(v) for v in w["pi"]]
        proj = (F.dot(w["proj"], s2) - sum(p * (r + self.T) for p, r in zip(pi, rows,
                                                                        strict=True))) % P
        norm = 0
        vals = self.norm_values(sq)
        for i, v in enumerate(vals):
            bits = bits1[i * self.k_norm:(i + 1) * self.k_norm]
            norm += int(w["lam"][i]) * (v - _recompose(bits))
        checks = [binary, norm % P, proj] + self.extra_checks(shares, sq, gd)
        return LocalResult(cons, tuple(checks), weight)

    def g0_small(self) -> NDArray[np.int32] | None:
        """The public small-integer vector whose inner product with x the pass computes."""
        return None

    def extra_checks(self, shares: ClientShares, sq: int, gd: int) -> list[int]:
        return []

    def server_rollback(self, shares: ClientShares, local: LocalResult, acc: Any) -> None:
        x = as_field(shares.vectors[0])  # rare (rejected clients): unpack once
        if local.memo is None:
            acc.vec[:] = F.sub(acc.vec, x)
        else:
            F.axpy(acc.vec, P - local.memo, x)
            acc.weight_sum = (acc.weight_sum - local.memo) % P

    def final_shares(self, acc: Any) -> list[FinalShare]:
        return [FinalShare(OpeningKind.AGGREGATE, acc.vec, False)]

    def mean_of(self, opened: dict[OpeningKind, F.FieldVec], n_accepted: int) -> NDArray[
            np.float32]:
        if n_accepted == 0:
            return np.zeros(self.d, np.float32)
        total = decode_fixed(opened[OpeningKind.AGGREGATE], self.f, lattice=2)
        return (total / n_accepted).astype(np.float32)

    def finish(self, opened: dict[OpeningKind, F.FieldVec], n_accepted: int) -> tuple[
            NDArray[np.float32], dict[str, float]]:
        return self.mean_of(opened, n_accepted), {}

    # -- test hooks (client faults) ---------------------------------------------------------------
    def wrap_around(self, x: F.FieldVec) -> F.FieldVec:
        """Three huge coordinates whose squares sum to what the originals' did (mod p)."""
        out = x.copy()
        target = sum(int(v) * int(v) for v in x[:3]) % P
        a, b = P // 3 + 12345, P // 5 + 6789
        for shift in range(1000):
            rest = (target - a * a - (b + shift) ** 2) % P
            c = pow(rest, (P + 1) // 4, P)
            if c * c % P == rest:
                out[:3] = [a, b + shift, c]
                return out
        raise ConfigError("no wrap-around vector found")

    def non_binary(self, secrets: ClientSecrets) -> ClientSecrets:
        """Replace bits (1 at position k, 0 at k−1) by (0, 2): same value, not bits."""
        s = secrets.scalars.copy()
        off = 1 + self.n_extra
        for k in range(1, self.k_norm):
            if s[off + k] == 1 and s[off + k - 1] == 0:
                s[off + k], s[off + k - 1] = 0, 2
                return ClientSecrets(secrets.vectors, s, secrets.private)
        raise ConfigError("no bit pattern to tamper with")


def _recompose(bits: F.FieldVec) -> int:
    return sum(int(b) << k for k, b in enumerate(bits)) % P


def _binary(bits: F.FieldVec, weights: F.FieldVec) -> int:
    if bits.shape[0] == 0:
        return 0
    minus_one = F.sub(bits, np.ones_like(bits))
    return F.dot(F.mul(weights, bits), minus_one)


def g_norm_bits(hi: int, g: NDArray[np.int64]) -> int:
    """Width of the range proofs on u and u − C for fltrust: |C| = |⟨x, g⟩| ≤ √hi·‖g‖."""
    return ((isqrt(hi) + 1) * (isqrt(int((g.astype(object) ** 2).sum())) + 1)).bit_length()
