"""Property tests of the rules: permutation invariance, staying in the honest range, bounds."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from phalanx.errors import ConfigError
from phalanx.rules import RULES, RuleContext, make_rule
from phalanx.rules.baselines import krum_select

finite = st.floats(-100, 100, allow_nan=False, width=32)


def matrices(min_rows: int = 1, max_rows: int = 9, max_dim: int = 6) -> st.SearchStrategy:
    return st.tuples(st.integers(min_rows, max_rows), st.integers(1, max_dim)).flatmap(
        lambda s: arrays(np.float32, s, elements=finite)
    )


@given(x=matrices(min_rows=5), seed=st.integers(0, 2**32 - 1))
def test_every_rule_is_permutation_invariant(x: np.ndarray, seed: int) -> None:
    perm = np.random.default_rng(seed).permutation(x.shape[0])
    ctx = RuleContext(dim=x.shape[1], reference=np.ones(x.shape[1], np.float32), num_byzantine=1)
    for name in RULES:
        rule = make_rule(name)
        if name in ("krum", "multi-krum"):
            continue  # equal scores are broken by position: tested on tie-free inputs below
        a = rule.aggregate([rule.prepare(v, ctx) for v in x], ctx).vector
        b = rule.aggregate([rule.prepare(v, ctx) for v in x[perm]], ctx).vector
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3, err_msg=name)


@given(x=matrices(min_rows=3))
def test_coordinate_rules_stay_inside_the_inputs_range(x: np.ndarray) -> None:
    ctx = RuleContext(dim=x.shape[1], num_byzantine=1)
    lo, hi = x.min(axis=0) - 1e-3, x.max(axis=0) + 1e-3
    for name in ("fedavg", "median", "trimmed-mean"):
        out = make_rule(name).aggregate(list(x), ctx).vector
        assert ((out >= lo) & (out <= hi)).all(), name


@given(honest=matrices(min_rows=4, max_rows=8), scale=st.floats(1e3, 1e6))
def test_median_and_trimmed_mean_stay_in_the_honest_range_when_f_is_bounded(
    honest: np.ndarray, scale: float
) -> None:
    # Prepare: f malicious rows with 2f < n, placed far outside
    f = (honest.shape[0] - 1) // 2 if honest.shape[0] > 2 else 0
    f = min(f, 2)
    evil = np.full((f, honest.shape[1]), scale, np.float32)
    ctx = RuleContext(dim=honest.shape[1], num_byzantine=f)
    lo, hi = honest.min(axis=0) - 1e-3, honest.max(axis=0) + 1e-3
    for name in ("median", "trimmed-mean"):
        out = make_rule(name).aggregate(list(honest) + list(evil), ctx).vector
        assert ((out >= lo) & (out <= hi)).all(), name


@given(x=matrices(min_rows=1), tau=st.floats(0.01, 10))
def test_norm_bounded_rules_output_stays_within_tau(x: np.ndarray, tau: float) -> None:
    ctx = RuleContext(dim=x.shape[1])
    for name in ("fedavg-nb", "cc"):
        rule = make_rule(name, tau=tau)
        out = rule.aggregate([rule.prepare(v, ctx) for v in x], ctx).vector
        assert np.linalg.norm(out) <= tau * (1 + 1e-3)


@given(x=matrices(min_rows=1), nu=st.floats(0.1, 10))
def test_fltrust_output_norm_is_at_most_the_reference_norm(x: np.ndarray, nu: float) -> None:
    g0 = np.linspace(-1, 1, x.shape[1]).astype(np.float32) + 0.5
    rule, ctx = make_rule("fltrust", nu=nu), RuleContext(dim=x.shape[1], reference=g0)
    prepared = [rule.prepare(v, ctx) for v in x]
    agg = rule.aggregate(prepared, ctx)
    assert np.linalg.norm(agg.vector) <= np.linalg.norm(g0) * (1 + 1e-3)
    # every accepted input had its norm normalized to nu; zero inputs are rejected
    for i in agg.accepted:
        assert abs(np.linalg.norm(prepared[i]) - nu) <= nu * 0.01


@given(n=st.integers(1, 12), f=st.integers(0, 6))
def test_krum_feasibility_is_enforced_never_clamped(n: int, f: int) -> None:
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    if n <= 2 * f + 2:
        try:
            krum_select(x, f=f)
        except ConfigError as e:
            assert f"n={n}" in str(e) and f"f={f}" in str(e)
        else:
            raise AssertionError("infeasible krum accepted")
    else:
        assert 0 <= int(krum_select(x, f=f)[0]) < n


@given(x=matrices(min_rows=1))
def test_rsa_output_is_eta_times_an_integer_vector_bounded_by_n(x: np.ndarray) -> None:
    rule, ctx = make_rule("rsa", eta=0.25), RuleContext(dim=x.shape[1])
    out = rule.aggregate([rule.prepare(v, ctx) for v in x], ctx).vector / 0.25
    np.testing.assert_allclose(out, np.round(out), atol=1e-4)
    assert np.abs(out).max() <= x.shape[0]


@given(n=st.integers(5, 12), d=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_krum_rules_are_permutation_invariant_without_ties(n: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)  # distinct scores almost surely
    perm = rng.permutation(n)
    ctx = RuleContext(dim=d, num_byzantine=1)
    for name in ("krum", "multi-krum"):
        a = make_rule(name).aggregate(list(x), ctx).vector
        b = make_rule(name).aggregate(list(x[perm]), ctx).vector
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)
