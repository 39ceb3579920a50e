"""Unit tests of the plaintext rules: each rule's prepare, check and combine on known inputs."""

from __future__ import annotations

import numpy as np
import pytest

from phalanx.errors import ConfigError, Reject
from phalanx.rules import RULES, RuleContext, make_rule
from phalanx.rules.baselines import krum_select


def vecs(*rows: list[float]) -> list[np.ndarray]:
    return [np.array(r, dtype=np.float32) for r in rows]


def test_fedavg_is_the_mean() -> None:
    # Prepare
    rule, ctx = make_rule("fedavg"), RuleContext(dim=2)
    # Execute
    agg = rule.aggregate(vecs([1, 2], [3, 4], [5, 9]), ctx)
    # Assert
    np.testing.assert_allclose(agg.vector, [3, 5])
    assert agg.accepted == (0, 1, 2) and agg.rejected == ()


def test_fedavg_nb_clips_on_prepare_and_rejects_unclipped_inputs() -> None:
    rule, ctx = make_rule("fedavg-nb", tau=1.0), RuleContext(dim=2)
    clipped = rule.prepare(np.array([3, 4], np.float32), ctx)
    np.testing.assert_allclose(clipped, [0.6, 0.8], rtol=1e-6)
    agg = rule.aggregate([clipped, np.array([3, 4], np.float32)], ctx)
    assert agg.accepted == (0,)
    assert agg.rejected[0].index == 1 and agg.rejected[0].reason is Reject.NORM_BOUND


def test_small_updates_pass_fedavg_nb_unchanged() -> None:
    rule, ctx = make_rule("fedavg-nb", tau=10.0), RuleContext(dim=2)
    np.testing.assert_array_equal(rule.prepare(np.array([3, 4], np.float32), ctx), [3, 4])


def test_cc_clips_around_the_public_center() -> None:
    center = np.array([10, 0], np.float32)
    rule, ctx = make_rule("cc", tau=1.0), RuleContext(dim=2, reference=center)
    ys = [rule.prepare(g, ctx) for g in vecs([10, 5], [10, -5])]
    np.testing.assert_allclose(ys, [[0, 1], [0, -1]], atol=1e-6)
    np.testing.assert_allclose(rule.aggregate(ys, ctx).vector, center)


def test_cc_without_center_uses_zero() -> None:
    rule, ctx = make_rule("cc", tau=100.0), RuleContext(dim=2)
    np.testing.assert_allclose(rule.aggregate(vecs([1, 1], [3, 3]), ctx).vector, [2, 2])


def test_cc_iter_converges_towards_the_majority() -> None:
    honest = [np.array([1.0, 1.0], np.float32) + 0.01 * i for i in range(8)]
    outlier = [np.array([1000.0, -1000.0], np.float32)] * 2
    rule = make_rule("cc-iter", tau=1.0, iterations=5)
    out = rule.aggregate(honest + outlier, RuleContext(dim=2)).vector
    assert np.linalg.norm(out - 1.0) < 0.5


def test_rsa_sends_signs_and_rejects_anything_else() -> None:
    rule, ctx = make_rule("rsa", eta=0.5), RuleContext(dim=3)
    s = rule.prepare(np.array([2.0, 0.0, -0.1], np.float32), ctx)
    np.testing.assert_array_equal(s, [1, 0, -1])
    agg = rule.aggregate([s, s, np.array([2, 0, 0], np.float32)], ctx)
    np.testing.assert_allclose(agg.vector, [1.0, 0.0, -1.0])
    assert agg.rejected[0].reason is Reject.SIGN_DOMAIN


def test_fltrust_matches_the_paper_formula() -> None:
    # FLTrust (Cao et al. 2021): ‖g0‖ · Σ ReLU(cos_i) ḡ_i / Σ ReLU(cos_i), ḡ_i = g_i/‖g_i‖
    rng = np.random.default_rng(3)
    g0 = rng.normal(size=16).astype(np.float32)
    gs = [rng.normal(size=16).astype(np.float32) for _ in range(6)] + [g0 * 5, -g0]
    rule, ctx = make_rule("fltrust", nu=2.0), RuleContext(dim=16, reference=g0)
    agg = rule.aggregate([rule.prepare(g, ctx) for g in gs], ctx)
    cos = np.array([g @ g0 / np.linalg.norm(g) / np.linalg.norm(g0) for g in gs])
    ts = np.maximum(cos, 0)
    weighted = sum(t * g / np.linalg.norm(g) for t, g in zip(ts, gs, strict=True))
    expected = np.linalg.norm(g0) * weighted / ts.sum()
    np.testing.assert_allclose(agg.vector, expected, rtol=1e-4, atol=1e-6)
    assert agg.revealed["trust_weight_sum"] == pytest.approx(ts.sum(), rel=1e-5)


def test_fltrust_rejects_unnormalized_inputs_and_zeroes_when_no_trust() -> None:
    g0 = np.array([1, 0], np.float32)
    rule, ctx = make_rule("fltrust", nu=1.0), RuleContext(dim=2, reference=g0)
    agg = rule.aggregate(vecs([0, 2], [-1, 0]), ctx)
    assert [r.reason for r in agg.rejected] == [Reject.NORM_RANGE]
    np.testing.assert_array_equal(agg.vector, [0, 0])
    assert agg.revealed["trust_weight_sum"] == 0.0


def test_fltrust_needs_a_reference() -> None:
    with pytest.raises(ConfigError, match="reference"):
        make_rule("fltrust").aggregate(vecs([1, 0]), RuleContext(dim=2))


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_rejects_nan_and_wrong_length_and_goes_on(name: str) -> None:
    rule = make_rule(name)
    ctx = RuleContext(dim=4, reference=np.ones(4, np.float32), num_byzantine=0)
    good = [rule.prepare(np.array([0.1, 0.2, -0.1, 0.3], np.float32) * (1 + i), ctx)
            for i in range(3)]
    bad = [np.array([np.nan, 0, 0, 0], np.float32), np.ones(5, np.float32),
           np.array([np.inf, 0, 0, 0], np.float32)]
    agg = rule.aggregate(good + bad, ctx)
    assert agg.accepted == (0, 1, 2)
    assert [r.reason for r in agg.rejected] == [Reject.NON_FINITE, Reject.WRONG_LENGTH,
                                               Reject.NON_FINITE]
    assert [r.index for r in agg.rejected] == [3, 4, 5]
    assert np.isfinite(agg.vector).all() and agg.vector.shape == (4,)


@pytest.mark.parametrize("name", sorted(RULES))
def test_no_valid_input_means_a_zero_update(name: str) -> None:
    rule = make_rule(name)
    ctx = RuleContext(dim=3, reference=np.ones(3, np.float32))
    agg = rule.aggregate([np.full(3, np.nan, np.float32)], ctx)
    np.testing.assert_array_equal(agg.vector, np.zeros(3))
    assert agg.accepted == ()


def test_krum_picks_the_central_update_and_rejects_infeasible_f() -> None:
    xs = np.array([[0, 0], [0.1, 0], [0, 0.1], [0.1, 0.1], [0.05, 0.05], [50, 50]], np.float32)
    assert int(krum_select(xs, f=1)[0]) == 4
    with pytest.raises(ConfigError, match="n > 2f"):
        krum_select(xs[:4], f=1)
    with pytest.raises(ConfigError, match="needs at least 5 valid inputs"):
        make_rule("krum").aggregate(list(xs[:4]), RuleContext(dim=2, num_byzantine=1))


def test_multi_krum_averages_the_selected() -> None:
    xs = np.array([[0, 0], [0.2, 0], [0, 0.2], [0.2, 0.2], [0.1, 0.1], [50, 50]], np.float32)
    out = make_rule("multi-krum").aggregate(list(xs), RuleContext(dim=2, num_byzantine=1)).vector
    np.testing.assert_allclose(out, [0.1, 0.1], atol=1e-6)


def exact_krum_order(x: np.ndarray, f: int) -> np.ndarray:
    """Reference: Krum scores from explicit float64 differences, ranked (stable)."""
    wide = x.astype(np.float64)
    dist = ((wide[:, None, :] - wide[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(dist, np.inf)
    scores = np.sort(dist, axis=1)[:, : x.shape[0] - f - 2].sum(axis=1)
    return np.argsort(scores, kind="stable")


def float32_gram_krum(x: np.ndarray, f: int) -> int:
    """What Krum did before: the Gram matrix in float32, then cast to float64."""
    gram = (x @ x.T).astype(np.float64)
    sq = np.diag(gram)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
    np.fill_diagonal(dist, np.inf)
    return int(np.argsort(np.sort(dist, axis=1)[:, : x.shape[0] - f - 2].sum(axis=1))[0])


def test_krum_is_exact_on_nearly_parallel_updates() -> None:
    # Prepare: honest updates sharing a large common component (pairwise cosine >= 0.997)
    wrong_in_float32 = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        common = 100 * (1 + 0.1 * rng.standard_normal(1000))
        xs = (common + 0.01 * rng.standard_normal((7, 1000))).astype(np.float32)
        norms = np.linalg.norm(xs, axis=1)
        assert ((xs @ xs.T) / np.outer(norms, norms)).min() >= 0.997
        order = exact_krum_order(xs, f=1)
        # Execute
        krum = int(krum_select(xs, f=1)[0])
        multi = sorted(int(i) for i in krum_select(xs, f=1, m=4))
        # Assert: the same choice as exact arithmetic, where the float32 Gram matrix errs
        assert krum == int(order[0])
        assert multi == sorted(int(i) for i in order[:4])
        wrong_in_float32 += float32_gram_krum(xs, f=1) != int(order[0])
    assert wrong_in_float32 >= 10  # the old float32 Gram matrix picked another update


def test_median_and_trimmed_mean() -> None:
    xs = vecs([1, -5], [2, 0], [3, 1], [100, 2], [4, 3])
    ctx = RuleContext(dim=2, num_byzantine=1)
    np.testing.assert_allclose(make_rule("median").aggregate(xs, ctx).vector, [3, 1])
    np.testing.assert_allclose(make_rule("trimmed-mean").aggregate(xs, ctx).vector, [3, 1])


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("fedavg-nb", {"tau": 0.0}, "tau=0.0"),
        ("cc", {"tau": -1.0}, "tau=-1.0"),
        ("rsa", {"eta": float("nan")}, "eta=nan"),
        ("fltrust", {"nu": 0}, "nu=0"),
        ("cc-iter", {"iterations": 0}, "iterations=0"),
        ("fedavg", {"bogus": 1}, "bogus"),
        ("nope", {}, "rule='nope' is unknown"),
    ],
)
def test_bad_rule_parameters_are_named(name: str, params: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_rule(name, **params)


@pytest.mark.parametrize(
    "name", ["krum", "multi-krum", "median", "trimmed-mean", "cc-iter", "fedavg"]
)
def test_incompatible_rules_say_so_in_secure_mode(name: str) -> None:
    with pytest.raises(ConfigError, match="no secure form"):
        make_rule(name, secure=True)


def test_secure_compatible_rules_are_the_four_of_the_spec() -> None:
    assert {n for n, c in RULES.items() if c.secure_compatible} == {"fedavg-nb", "cc", "rsa",
                                                                    "fltrust"}


def test_aggregate_does_not_mutate_inputs() -> None:
    xs = vecs([1, 2], [3, 4], [5, 6])
    copies = [x.copy() for x in xs]
    for name in RULES:
        make_rule(name).aggregate(xs, RuleContext(dim=2, reference=np.ones(2, np.float32)))
    for x, c in zip(xs, copies, strict=True):
        np.testing.assert_array_equal(x, c)


def test_aggregate_takes_a_matrix_and_rejects_rows_of_it() -> None:
    x = np.array([[1, 2], [np.nan, 0], [3, 4]], np.float32)
    agg = make_rule("fedavg").aggregate(x, RuleContext(dim=2))
    np.testing.assert_allclose(agg.vector, [2, 3])
    assert agg.accepted == (0, 2) and agg.rejected[0].reason is Reject.NON_FINITE


def test_a_finite_vector_whose_norm_overflows_is_finite_but_not_norm_bounded() -> None:
    big = np.array([3e38, 3e38], np.float32)
    ctx = RuleContext(dim=2)
    assert make_rule("fedavg").check(big, ctx) is None
    verdict = make_rule("fedavg-nb").check(big, ctx)
    assert verdict is not None and verdict.reason is Reject.NORM_BOUND
