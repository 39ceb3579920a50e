"""Partitions: coverage, reproducibility, Dirichlet skew, shards, and parameter errors."""

from __future__ import annotations

import numpy as np
import pytest

from phalanx.errors import ConfigError
from phalanx.ml.partition import (
    compute_label_counts,
    compute_label_skew,
    fill_empty_clients,
    partition,
)


def balanced_labels(n_per_class: int = 100, classes: int = 10) -> np.ndarray:
    return np.repeat(np.arange(classes), n_per_class)


def assert_exact_cover(parts: list[np.ndarray], n: int) -> None:
    merged = np.concatenate(parts)
    assert merged.shape[0] == n
    assert np.array_equal(np.sort(merged), np.arange(n))


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "shards"])
def test_every_index_exactly_once_and_no_empty_client(scheme: str) -> None:
    labels = balanced_labels()
    parts = partition(labels, 20, scheme, alpha=0.1, seed=5)
    assert len(parts) == 20
    assert_exact_cover(parts, labels.shape[0])
    assert min(p.shape[0] for p in parts) >= 1
    assert all(p.dtype == np.int64 for p in parts)


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "shards"])
def test_same_seed_same_split_other_seed_other_split(scheme: str) -> None:
    labels = balanced_labels()
    a = partition(labels, 7, scheme, seed=11)
    b = partition(labels, 7, scheme, seed=11)
    c = partition(labels, 7, scheme, seed=12)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_iid_sizes_differ_by_at_most_one_and_skew_is_small() -> None:
    labels = balanced_labels(200)
    parts = partition(labels, 9, "iid", seed=0)
    sizes = [p.shape[0] for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert compute_label_skew(labels, parts, 10) < 0.15


def test_dirichlet_skew_grows_as_alpha_shrinks() -> None:
    labels = balanced_labels(300)
    skews = [
        np.mean([compute_label_skew(labels, partition(labels, 10, "dirichlet", alpha=a, seed=s), 10)
                 for s in range(3)])
        for a in (100.0, 1.0, 0.1)
    ]
    assert skews[0] < skews[1] < skews[2]
    assert skews[0] < 0.1 and skews[2] > 0.5


def test_shards_give_each_client_at_most_k_labels() -> None:
    labels = balanced_labels(60)  # 600 examples, 10 classes
    parts = partition(labels, 30, "shards", shards_per_client=2, seed=3)
    counts = compute_label_counts(labels, parts, 10)
    assert ((counts > 0).sum(axis=1) <= 2).all()
    assert {p.shape[0] for p in parts} == {20}


def test_dirichlet_tiny_data_still_feeds_every_client() -> None:
    # Prepare: 12 examples, 12 clients, extreme skew: re-draws rarely succeed, the fix-up must
    labels = np.array([0] * 6 + [1] * 6)
    parts = partition(labels, 12, "dirichlet", alpha=0.01, seed=0)
    assert_exact_cover(parts, 12)
    assert all(p.shape[0] == 1 for p in parts)


def test_fill_empty_clients_moves_from_the_largest() -> None:
    parts = [np.arange(5), np.empty(0, np.int64), np.arange(5, 7)]
    fixed = fill_empty_clients(parts, np.random.default_rng(0))
    assert [p.shape[0] for p in fixed] == [4, 1, 2]
    assert_exact_cover(fixed, 7)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"num_clients": 0}, "num_clients=0"),
        ({"num_clients": 1001}, "num_clients=1001"),
        ({"num_clients": 5, "scheme": "dirichlet", "alpha": 0.0}, "alpha=0.0"),
        ({"num_clients": 5, "scheme": "dirichlet", "alpha": -1.0}, "alpha=-1.0"),
        ({"num_clients": 5, "scheme": "dirichlet", "alpha": float("nan")}, "alpha=nan"),
        ({"num_clients": 5, "scheme": "shards", "shards_per_client": 0}, "shards_per_client=0"),
        ({"num_clients": 600, "scheme": "shards", "shards_per_client": 2}, "shards"),
        ({"num_clients": 5, "scheme": "pathological"}, "scheme='pathological'"),
    ],
)
def test_bad_parameters_name_the_parameter_and_value(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        partition(balanced_labels(), **kwargs)


def test_bad_labels_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="1-D"):
        partition(np.zeros((2, 2), np.int64), 1)
    with pytest.raises(ConfigError, match="integers"):
        partition(np.zeros(4), 1)
    with pytest.raises(ConfigError, match=">= 0"):
        partition(np.array([0, -1]), 1)
