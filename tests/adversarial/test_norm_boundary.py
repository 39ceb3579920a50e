"""The secure norm check is exact (issue 9): secure and plaintext accept the same inputs.

A malicious client need not run ``prepare`` or the honest encoding: it shares any integer
vector y (as x = 2y) with correct witnesses. These tests do exactly that — the circuit's
``client_secrets`` is replaced by ``witness`` of a chosen encoding — and check the committee's
verdict on vectors just inside and just outside ‖x‖ ≤ τ(1 + slack) (fedavg-nb, cc) and
‖x‖² ∈ ν²(1 ± δ) (fltrust) against the plaintext rule applied to the decoded vector y·2^-f.
Before the fix the circuit added an absolute slack of d (in 2^-2f units) to the squared bound,
so a client could send ‖x‖ ≈ 1.8τ at d = 10^4, τ = 0.001, f = 16.
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil, floor, isqrt
from typing import Any

import numpy as np
import pytest

import phalanx.rules.secure.backend as backend_module
from phalanx.errors import Reject
from phalanx.mpc import field as F
from phalanx.mpc.prg import Prg
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.base import Rule
from phalanx.rules.secure import FramingEnvelope, SecureBackend, SecureParams, make_circuit

FRAC = 16
SEED = b"N" * 32


def _vector_with_square_sum(target: int, d: int, seed: int) -> np.ndarray:
    """Integers y (int64, length d) with Σ y_j² = target exactly: one large coordinate and
    ±1s, at random places with random signs (‖y‖_1 < 3√target, far inside the rows' T)."""
    rng = np.random.default_rng(seed)
    big = isqrt(target)
    ones = target - big * big  # ≤ 2·big
    if ones + 1 > d:
        raise ValueError(f"target {target} needs {ones + 1} coordinates, d={d}")
    y = np.zeros(d, np.int64)
    places = rng.permutation(d)[:ones + 1]
    y[places] = rng.choice([-1, 1], ones + 1)
    y[places[0]] *= big
    assert int(np.dot(y, y)) == target
    return y


def _decoded(y: np.ndarray) -> np.ndarray:
    """What the circuit sees, as the plaintext rule sees it: y·2^-f (exact in float32)."""
    return (y.astype(np.float64) / 2.0**FRAC).astype(np.float32)


def _bypass_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client shares 2·round(x·2^f) of its 'prepared' input with honest witnesses
    (``witness``), skipping ``prepare`` and the honest encoding's rounding and nudging."""
    made = backend_module.make_circuit

    def make(rule: Rule, ctx: RuleContext, params: SecureParams, n: int) -> Any:
        circuit = made(rule, ctx, params, n)

        def client_secrets(prepared: np.ndarray, prg: Prg) -> Any:
            y = np.rint(np.asarray(prepared, np.float64) * 2.0**FRAC).astype(np.int64)
            return circuit.witness(F.from_signed(2 * y), prg)

        circuit.client_secrets = client_secrets  # type: ignore[method-assign]
        return circuit

    monkeypatch.setattr(backend_module, "make_circuit", make)


def _verdicts(rule: Rule, ctx: RuleContext, inputs: list[np.ndarray]) -> tuple[
        dict[int, Reject | None], dict[int, Reject | None]]:
    """(secure, plaintext) verdict per input index: None when accepted."""
    res = SecureBackend(SecureParams(m=5, t=1, frac_bits=FRAC), envelope=FramingEnvelope
                        ).aggregate(rule, inputs, ctx, seed=SEED)
    assert res.aborted is None and res.cheating_servers == ()
    secure: dict[int, Reject | None] = {i: None for i in res.aggregate.accepted}
    secure.update({r.index: r.reason for r in res.aggregate.rejected})
    plain = {}
    for i, x in enumerate(inputs):
        verdict = rule.check(x, ctx)
        plain[i] = None if verdict is None else verdict.reason
    return secure, plain


@pytest.mark.parametrize("name", ["fedavg-nb", "cc"])
def test_norm_bound_is_exact_at_the_boundary_and_the_1_8_tau_attack_is_rejected(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: the parameters, and H = ⌊(τ(1 + slack)·2^f)²⌋, the largest Σ y² the
    # plaintext rule accepts on y·2^-f (computed exactly from the rule's own float bound)
    d, tau = 10_000, 0.001
    rule = make_rule(name, tau=tau)
    ctx = RuleContext(dim=d, reference=np.zeros(d, np.float32) if name == "cc" else None)
    h = floor((Fraction(rule.norm_bound()) * 2**FRAC) ** 2)  # type: ignore[attr-defined]
    targets = {"inside-1": h - 1, "inside": h, "outside": h + 1, "outside+1": h + 2,
               "attack": h + d}  # the old circuit's bound: 4(H + d)
    inputs = [_decoded(_vector_with_square_sum(t, d, seed)) for seed, t in
              enumerate(targets.values())]
    attack = inputs[-1]
    assert float(np.linalg.norm(attack.astype(np.float64))) > 1.8 * tau
    _bypass_encoding(monkeypatch)
    # Execute
    secure, plain = _verdicts(rule, ctx, inputs)
    # Assert: the same verdicts as the plaintext rule, and the expected ones
    assert secure == plain
    bad = Reject.NORM_BOUND
    assert [secure[i] for i in range(len(inputs))] == [None, None, bad, bad, bad]


def test_fltrust_norm_range_is_exact_at_both_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: ν small enough that the plaintext's float32 norm is exact on these vectors;
    # L, H: the smallest and largest Σ y² the plaintext rule accepts, from its own floats
    d, nu = 10_000, 0.01
    rule = make_rule("fltrust", nu=nu)
    rng = np.random.default_rng(5)
    ctx = RuleContext(dim=d, reference=rng.standard_normal(d).astype(np.float32))
    lo_sq, hi_sq = rule.norm_sq_range()  # type: ignore[attr-defined]
    low = ceil(Fraction(lo_sq) * 2 ** (2 * FRAC))
    high = floor(Fraction(hi_sq) * 2 ** (2 * FRAC))
    targets = [low - d, low - 2, low - 1, low, low + 1, (low + high) // 2, high - 1, high,
               high + 1, high + 2, high + d]
    inputs = [_decoded(_vector_with_square_sum(t, d, 100 + k)) for k, t in enumerate(targets)]
    _bypass_encoding(monkeypatch)
    # Execute
    secure, plain = _verdicts(rule, ctx, inputs)
    # Assert
    assert secure == plain
    bad = Reject.NORM_RANGE
    assert [secure[i] for i in range(len(inputs))] == [bad, bad, bad, None, None, None, None,
                                                       None, bad, bad, bad]


def test_a_vector_on_the_grid_encodes_to_itself() -> None:
    """The honest encoding of an exactly representable vector is that vector (no rounding,
    nothing to re-round even outside the bound): the bypass above is what a client that
    skips ``prepare`` sends anyway."""
    d = 1000
    rule = make_rule("fedavg-nb", tau=0.001)
    ctx = RuleContext(dim=d)
    circuit = make_circuit(rule, ctx, SecureParams(frac_bits=FRAC), 3)
    for t in (100, 10_000):
        y = _vector_with_square_sum(t, d, t)
        x = circuit.encode(_decoded(y), Prg(SEED))  # type: ignore[attr-defined]
        assert np.array_equal(F.centered(x), 2 * y)


@pytest.mark.parametrize(("name", "kw", "d"), [
    ("fedavg-nb", {"tau": 0.001}, 10_000),  # rounding noise ≫ the slack: always re-rounded
    ("fedavg-nb", {"tau": 1.0, "slack": 0.0}, 3000),
    ("cc", {"tau": 0.05, "slack": 0.0}, 20_000),
    ("fltrust", {"nu": 0.01, "delta": 1e-3}, 2000),  # a range of ±430 units in Σ y²
    ("fltrust", {"nu": 1.0}, 5000),
])
def test_honest_encodings_always_pass_the_exact_norm_check(name: str, kw: dict[str, float],
                                                           d: int) -> None:
    """Deterministically: prepare, then the honest encoding lands Σ(2y)² in [lo, hi] for
    every seed (docs/mpc.md, "Exact norm check"), including raw updates at the clipping bound
    and ones with every coordinate just above a half step (the worst case for rounding up)."""
    rule = make_rule(name, **kw)
    rng = np.random.default_rng(d)
    ref = rng.standard_normal(d).astype(np.float32)
    ctx = RuleContext(dim=d, reference=ref if name in ("cc", "fltrust") else None)
    circuit = make_circuit(rule, ctx, SecureParams(frac_bits=FRAC), 3)
    raws = [(rng.standard_normal(d) * 10.0 ** rng.uniform(-3, 3)).astype(np.float32)
            for _ in range(12)]
    half = (np.full(d, 0.5001) / 2.0**FRAC).astype(np.float32)
    raws += [half * rng.choice([-1, 1], d).astype(np.float32) + ref * (name == "cc")]
    for k, raw in enumerate(raws):
        prepared = rule.prepare(raw, ctx)
        for seed in range(4):
            x = circuit.encode(prepared, Prg(bytes([k, seed]) * 16))  # type: ignore[attr-defined]
            sq = int(np.dot(F.centered(x), F.centered(x)))
            assert sq <= circuit.hi  # type: ignore[attr-defined]
            if circuit.lo is not None:  # type: ignore[attr-defined]
                assert sq >= circuit.lo  # type: ignore[attr-defined]
            # each coordinate is still one of its two roundings
            v = np.asarray(prepared, np.float64) * 2.0**FRAC
            y = F.centered(x) // 2
            assert np.all((y == np.floor(v)) | (y == np.ceil(v)))
