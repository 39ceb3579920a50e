"""Property tests: every feasible partition is an exact cover with no empty client."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from phalanx.ml.partition import partition


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, int, str, float, int, int]:
    n = draw(st.integers(1, 300))
    classes = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31))
    labels = np.random.default_rng(seed).integers(0, classes, n)
    scheme = draw(st.sampled_from(["iid", "dirichlet", "shards"]))
    k = draw(st.integers(1, 4))
    max_clients = n // k if scheme == "shards" else n
    clients = draw(st.integers(1, max(1, min(max_clients, 40))))
    alpha = draw(st.floats(0.01, 50.0))
    return labels, clients, scheme, alpha, k, seed


@given(cases())
def test_partition_is_an_exact_cover_without_empty_clients(
    case: tuple[np.ndarray, int, str, float, int, int],
) -> None:
    labels, clients, scheme, alpha, k, seed = case
    if scheme == "shards" and clients * k > labels.shape[0]:
        k = 1
    parts = partition(labels, clients, scheme, alpha=alpha, shards_per_client=k, seed=seed)
    merged = np.concatenate(parts)
    assert len(parts) == clients
    assert np.array_equal(np.sort(merged), np.arange(labels.shape[0]))
    assert min(p.shape[0] for p in parts) >= 1
