"""Secure fltrust (protocol.md §3.3): trust weights as witnesses, N = Σ w_i x_i at degree 2t.

ĝ_0 (normalized to ν) is public and encoded to nearest: g = round(ĝ_0·2^f), |g_j| ≤ ν·2^f.
With x = 2y: C = ⟨x, g⟩ (scale 2^{2f+1}), G' = ⌊2⟨g, g⟩ / 2^f⌋ (scale 2^{f+1}), so
w = ⌊max(0, C)/G'⌋ is ReLU(cos)·‖x‖/‖ĝ_0‖ at scale 2^f. Witnesses u = max(0, C), w, r = u − wG'.
Checks (one random combination per reason): TRUST_WEIGHT: u(u − C) = 0, u ∈ [0, 2^K_u),
u − C ∈ [0, 2^K_u), w ∈ [0, 2^{f+1}), u − wG' − r = 0; REMAINDER: r ∈ [0, 2^K_r),
G' − 1 − r ∈ [0, 2^K_r). Largest magnitudes: |C| ≤ √hi·‖g‖ < 2^36; each coordinate of
N is at most n·2^{f+1}·2T (checked < 2^59 by the backend); D ≤ n·2^{f+1}.
Output: (‖g_0‖/ν)·N/(2^{f+1}·D) in integers; revealed D/2^f (the sum of trust weights).

Trust bit (``trust_bit=True``, docs/economics.md): a fourth witness b with TRUST_BIT:
b(b − 1) = 0, w(1 − b) = 0, w − b ∈ [0, 2^{f+1}). So b ∈ {0, 1}; b = 0 forces w = 0; b = 1
forces w ≥ 1 (w − 1 ≥ 0, no wrap: w < 2^{f+1} is range-checked): b = [w > 0] exactly, and an
honest client (b computed from its own w) always passes. b's share is opened with the check
values (``client_reveals``): a valid input with b = 0 is counted (with weight 0) but is in
neither the accepted nor the rejected list.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ConfigError, Reject
from phalanx.mpc import field as F
from phalanx.mpc.checks import bits_of
from phalanx.mpc.circuit import ClientSecrets, ClientShares, FinalShare
from phalanx.mpc.client_kernels import dot_small
from phalanx.mpc.messages import OpeningKind
from phalanx.rules.base import RuleContext, l2_norm
from phalanx.rules.fltrust import FLTrust
from phalanx.rules.secure.vector import MIN_ROWS, NormCircuit, g_norm_bits

P = F.P


class FLTrustCircuit(NormCircuit):
    """fltrust compiled to shares; reasons NOT_BINARY, NORM_RANGE, PROJECTION, TRUST_WEIGHT,
    REMAINDER (reported in that order of priority)."""

    def __init__(self, rule: FLTrust, ctx: RuleContext, *, frac_bits: int,
                 rows: int = MIN_ROWS, trust_bit: bool = False) -> None:
        lo, hi = rule.norm_sq_range()
        super().__init__(dim=ctx.dim, frac_bits=frac_bits, rows=rows, sq_max=Fraction(hi),
                         sq_min=Fraction(max(0.0, lo)), norm_reason=Reject.NORM_RANGE)
        g0 = rule.normalized_reference(ctx).astype(np.float64)
        self.g = np.rint(g0 * 2.0**frac_bits).astype(np.int64)
        self.g_fe = F.from_signed(self.g)
        if self.g.size and int(np.abs(self.g).max()) >= 1 << 31:
            raise ConfigError(f"nu={rule.nu} at frac_bits={frac_bits} encodes g_0 beyond 2^31; "
                              "lower nu or frac_bits")
        self.g32 = self.g.astype(np.int32)  # what the servers' pass reads (4 bytes/coordinate)
        self.gp = max(1, (2 * int((self.g.astype(object) ** 2).sum())) >> frac_bits)
        self.k_u = g_norm_bits(self.hi, self.g)
        self.k_w = frac_bits + 1
        self.k_r = self.gp.bit_length()
        self.trust_bit = trust_bit
        self.n_extra = 4 if trust_bit else 3
        self.scale = l2_norm(rule.reference_of(ctx)) / rule.nu
        self.check_reasons = self.check_reasons + (Reject.TRUST_WEIGHT, Reject.REMAINDER)
        if trust_bit:
            self.check_reasons += (Reject.TRUST_BIT,)
            self.client_reveals = ("trust_bit",)

    def extra_bits(self) -> int:
        return 2 * self.k_u + self.k_w + 2 * self.k_r + (self.k_w if self.trust_bit else 0)

    def g0_small(self) -> NDArray[np.int32] | None:
        return self.g32

    def extra_witness(self, x: F.FieldVec, w_delta: int = 0, r_delta: int = 0,
                      bit: int | None = None) -> tuple[list[int], list[int]]:
        """[u, w, r] (and b = [w > 0], or ``bit`` when a test lies), then their range bits."""
        c = F.centered_int(dot_small(x, self.g, self.g_fe))  # = F.dot(x, g_fe), one int pass
        u = max(0, c)
        w = u // self.gp + w_delta
        r = u - (w - w_delta) * self.gp + r_delta
        parts = [bits_of([u % P, (u - c) % P], self.k_u), bits_of([w % P], self.k_w),
                 bits_of([r % P, (self.gp - 1 - r) % P], self.k_r)]
        values = [u % P, w % P, r % P]
        if self.trust_bit:
            b = int(w > 0) if bit is None else bit
            values.append(b % P)
            parts.append(bits_of([(w - b) % P], self.k_w))
        return values, [int(v) for v in np.concatenate(parts)]

    def tamper_weight(self, secrets: ClientSecrets, *, w_delta: int = 0, r_delta: int = 0,
                      bit: int | None = None) -> ClientSecrets:
        """Client fault: claim trust weight w + w_delta, remainder r + r_delta (and trust bit
        ``bit``), with the bits of those values."""
        values, bits = self.extra_witness(secrets.private, w_delta, r_delta, bit)
        s = secrets.scalars.copy()
        s[1:1 + len(values)] = values
        s[s.shape[0] - len(bits):] = bits
        return ClientSecrets(secrets.vectors, s, secrets.private)

    def trust_bit_of(self, secrets: ClientSecrets) -> int:
        """The trust bit a client's secrets claim (ConfigError when the bit is off)."""
        if not self.trust_bit:
            raise ConfigError("trust_bit=False: this circuit has no trust bit")
        return int(secrets.scalars[4])

    def weight_share(self, shares: ClientShares) -> int | None:
        return int(shares.scalars1[2])

    def extra_checks(self, shares: ClientShares, sq: int, gd: int) -> list[int]:
        s1 = shares.scalars1
        lam = [int(v) for v in self.pub.weights["lam"]]
        u, w, r = int(s1[1]), int(s1[2]), int(s1[3])
        off = 1 + self.n_extra + self.n_norm * self.k_norm
        widths = [self.k_u, self.k_u, self.k_w, self.k_r, self.k_r]
        if self.trust_bit:
            widths.append(self.k_w)
        rec = []
        for width in widths:
            rec.append(sum(int(b) << k for k, b in enumerate(s1[off:off + width])) % P)
            off += width
        trust = (lam[2] * (u * ((u - gd) % P) % P) + lam[3] * (u - rec[0])
                 + lam[4] * (u - gd - rec[1]) + lam[5] * (w - rec[2])
                 + lam[6] * (u - w * self.gp - r)) % P
        remainder = (lam[7] * (r - rec[3]) + lam[8] * (self.gp - 1 - r - rec[4])) % P
        if not self.trust_bit:
            return [trust, remainder]
        b = int(s1[4])
        bit = (lam[9] * (b * ((b - 1) % P) % P) + lam[10] * (w * ((1 - b) % P) % P)
               + lam[11] * (w - b - rec[5])) % P
        return [trust, remainder, bit, b]  # b's share: opened with the checks (client_reveals)

    def final_shares(self, acc: Any) -> list[FinalShare]:
        return [FinalShare(OpeningKind.AGGREGATE, acc.vec, True),
                FinalShare(OpeningKind.WEIGHT_SUM, np.array([acc.weight_sum], np.uint64), False)]

    def finish(self, opened: dict[OpeningKind, F.FieldVec], n_accepted: int) -> tuple[
            NDArray[np.float32], dict[str, float]]:
        d_int = F.centered_int(int(opened[OpeningKind.WEIGHT_SUM][0]))
        revealed = {"trust_weight_sum": d_int / 2.0**self.f}
        if n_accepted == 0 or d_int <= 0:
            return np.zeros(self.d, np.float32), revealed
        n_int = F.centered(opened[OpeningKind.AGGREGATE]).astype(np.float64)
        out = n_int * (self.scale / (2.0 ** (self.f + 1) * d_int))
        return out.astype(np.float32), revealed
