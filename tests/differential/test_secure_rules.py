"""Differential tests: each secure rule against its plaintext backend (protocol.md §3.3).

The secure output must equal ``rule.aggregate`` within :func:`error_bound`, with the same accepted
and rejected sets and the same revealed quantities.
"""

from __future__ import annotations

import numpy as np
import pytest

from phalanx.mpc.parties import SeededSecrets
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.base import Rule
from phalanx.rules.secure import FramingEnvelope, SecureBackend, SecureParams, error_bound

TEST_SECRETS = SeededSecrets(b"T" * 32)
"""Reproducible party secrets: these tests compare runs (and are about the MPC logic)."""


def framed(params: SecureParams) -> SecureBackend:
    """The secure backend with framing-only envelopes (these tests are about the MPC logic)."""
    return SecureBackend(params, envelope=FramingEnvelope, secrets=TEST_SECRETS)

RULES = [("fedavg-nb", {"tau": 1.0}), ("cc", {"tau": 0.5}), ("rsa", {"eta": 0.01}),
         ("fltrust", {"nu": 1.0})]


def _setup(name: str, kw: dict[str, float], d: int, n: int, seed: int,
           scale: float = 1.0) -> tuple[Rule, RuleContext, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    rule = make_rule(name, **kw)
    g0 = rng.standard_normal(d).astype(np.float32)
    ctx = RuleContext(dim=d, reference=g0 if name in ("fltrust", "cc") else None)
    raw = [(scale * (g0 + rng.standard_normal(d))).astype(np.float32) for _ in range(n)]
    return rule, ctx, [rule.prepare(r, ctx) for r in raw]


def _assert_agree(rule: Rule, ctx: RuleContext, prepared: list[np.ndarray], seed: bytes,
                  params: SecureParams) -> None:
    # Execute
    secure = framed(params).aggregate(rule, prepared, ctx, seed=seed)
    plain = rule.aggregate(prepared, ctx)
    # Assert
    assert secure.aborted is None and secure.cheating_servers == ()
    assert secure.aggregate.accepted == plain.accepted
    assert [(r.index, r.reason) for r in secure.aggregate.rejected] == [
        (r.index, r.reason) for r in plain.rejected]
    bound = error_bound(rule, [prepared[i] for i in plain.accepted], ctx, params.frac_bits)
    err = float(np.abs(secure.aggregate.vector.astype(np.float64) - plain.vector).max())
    assert err <= bound, f"{rule.name}: error {err:.3g} > bound {bound:.3g}"
    for key, value in plain.revealed.items():
        assert secure.aggregate.revealed[key] == pytest.approx(value, rel=1e-3, abs=1e-3)


@pytest.mark.parametrize(("name", "kw"), RULES)
@pytest.mark.parametrize(("seed", "sharing"), [(0, "seeded"), (1, "seeded"), (2, "masked")])
def test_secure_equals_plaintext_on_random_updates(name: str, kw: dict[str, float],
                                                   seed: int, sharing: str) -> None:
    rule, ctx, prepared = _setup(name, kw, d=3000, n=6, seed=seed)
    _assert_agree(rule, ctx, prepared, bytes([seed]) * 32,
                  SecureParams(m=5, t=1, sharing=sharing))


@pytest.mark.parametrize(("name", "kw"), RULES)
def test_secure_equals_plaintext_on_adversarially_large_honest_updates(
        name: str, kw: dict[str, float]) -> None:
    """Huge raw updates (clipped or normalized by prepare) and all mass on one coordinate."""
    rule, ctx, prepared = _setup(name, kw, d=2000, n=5, seed=7, scale=1e4)
    spike = np.zeros(2000, np.float32)
    spike[17] = -1e6
    prepared.append(rule.prepare(spike, ctx))
    _assert_agree(rule, ctx, prepared, b"L" * 32, SecureParams(m=7, t=2))


def test_secure_fltrust_at_d_1e5() -> None:
    rule, ctx, prepared = _setup("fltrust", {"nu": 1.0}, d=100_000, n=4, seed=3)
    _assert_agree(rule, ctx, prepared, b"D" * 32, SecureParams(m=4, t=1))


def test_no_valid_input_gives_the_zero_update() -> None:
    rule, ctx, prepared = _setup("fedavg-nb", {"tau": 1.0}, d=500, n=3, seed=2)
    bad = [p * 3 for p in prepared]
    _assert_agree(rule, ctx, bad, b"Z" * 32, SecureParams())


@pytest.mark.parametrize(("name", "kw"), RULES)
@pytest.mark.parametrize("d", [1, 8])
def test_tiny_dimensions_agree(name: str, kw: dict[str, float], d: int) -> None:
    rule, ctx, prepared = _setup(name, kw, d=d, n=5, seed=d)
    _assert_agree(rule, ctx, prepared, b"T" * 32, SecureParams(m=4, t=1))


def test_fltrust_with_a_zero_reference_gives_the_zero_update() -> None:
    rule = make_rule("fltrust")
    ctx = RuleContext(dim=50, reference=np.zeros(50, np.float32))
    prepared = [rule.prepare(np.ones(50, np.float32) * (i + 1), ctx) for i in range(3)]
    _assert_agree(rule, ctx, prepared, b"0" * 32, SecureParams())
