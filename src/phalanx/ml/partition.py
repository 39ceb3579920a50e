"""Split a labelled dataset among clients: iid, Dirichlet label skew, or label shards.

Every scheme is a pure function of ``(labels, num_clients, parameters, seed)``: the same seed gives
the same split. Every index appears in exactly one client's array, and every client gets at least
one example (see :func:`partition_dirichlet` for how that is guaranteed).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ConfigError

PARTITIONS: tuple[str, ...] = ("iid", "dirichlet", "shards")

#: Dirichlet draws tried before the fix-up moves examples to empty clients (Hsu et al. re-draw).
DIRICHLET_REDRAWS = 100

IndexArray = NDArray[np.int64]


def partition(
    labels: NDArray[np.integer],
    num_clients: int,
    scheme: str = "iid",
    *,
    alpha: float = 0.5,
    shards_per_client: int = 2,
    seed: int = 0,
) -> list[IndexArray]:
    """Index arrays (sorted, int64) of each client's examples under ``scheme``."""
    labels = validate_labels(labels)
    if not isinstance(num_clients, int | np.integer) or num_clients < 1:
        raise ConfigError(f"num_clients={num_clients} must be an integer >= 1")
    if num_clients > labels.shape[0]:
        raise ConfigError(
            f"num_clients={num_clients} exceeds the number of examples n={labels.shape[0]}"
        )
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        parts = partition_iid(labels.shape[0], num_clients, rng)
    elif scheme == "dirichlet":
        parts = partition_dirichlet(labels, num_clients, alpha, rng)
    elif scheme == "shards":
        parts = partition_shards(labels, num_clients, shards_per_client, rng)
    else:
        raise ConfigError(f"scheme={scheme!r} is unknown; choose one of {PARTITIONS}")
    return [np.sort(p).astype(np.int64, copy=False) for p in parts]


def validate_labels(labels: NDArray[np.integer]) -> NDArray[np.int64]:
    """A 1-D, non-empty, non-negative integer label array."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ConfigError(f"labels must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError(f"labels must be integers, got dtype {arr.dtype}")
    if int(arr.min()) < 0:
        raise ConfigError(f"labels must be >= 0, got min {int(arr.min())}")
    return arr.astype(np.int64, copy=False)


def partition_iid(n: int, num_clients: int, rng: np.random.Generator) -> list[IndexArray]:
    """A random permutation cut into ``num_clients`` near-equal parts (sizes differ by <= 1)."""
    return list(np.array_split(rng.permutation(n).astype(np.int64), num_clients))


def partition_dirichlet(
    labels: NDArray[np.int64], num_clients: int, alpha: float, rng: np.random.Generator
) -> list[IndexArray]:
    """Per-class Dirichlet(alpha) proportions over clients [Hsu, Qi, Brown 2019, §3].

    For each class c, draw q_c ~ Dir(alpha·1) and give client j a q_cj share of c's (shuffled)
    examples. Small alpha → each client sees few classes; alpha → inf → iid. Like the reference
    implementation, the whole draw is repeated while some client is empty (at most
    DIRICHLET_REDRAWS times); if clients are still empty after that (tiny datasets, tiny alpha),
    each empty client takes one random example from the currently largest client.
    """
    if not (math.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"alpha={alpha} must be a finite number > 0")
    classes = np.unique(labels)
    parts: list[list[IndexArray]] = []
    for _ in range(DIRICHLET_REDRAWS):
        parts = [[] for _ in range(num_clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c)).astype(np.int64)
            shares = rng.dirichlet(np.full(num_clients, alpha))
            cuts = np.round(np.cumsum(shares)[:-1] * idx.shape[0]).astype(np.int64)
            for j, chunk in enumerate(np.split(idx, cuts)):
                parts[j].append(chunk)
        if all(sum(len(c) for c in p) > 0 for p in parts):
            break
    merged = [np.concatenate(p) if p else np.empty(0, np.int64) for p in parts]
    return fill_empty_clients(merged, rng)


def fill_empty_clients(parts: list[IndexArray], rng: np.random.Generator) -> list[IndexArray]:
    """Move one random example from the largest client to each empty one (in client order)."""
    parts = list(parts)
    for j in range(len(parts)):
        if parts[j].shape[0] > 0:
            continue
        donor = int(np.argmax([p.shape[0] for p in parts]))
        pick = int(rng.integers(parts[donor].shape[0]))
        parts[j] = parts[donor][pick : pick + 1].copy()
        parts[donor] = np.delete(parts[donor], pick)
    return parts


def partition_shards(
    labels: NDArray[np.int64], num_clients: int, shards_per_client: int, rng: np.random.Generator
) -> list[IndexArray]:
    """Sort by label, cut into num_clients·k shards, deal k random shards to each client.

    The pathological non-iid split of McMahan et al. 2017 (§3: 200 shards of 300 MNIST images,
    2 per client). Ties within a label are broken at random, so a seed fixes the split.
    """
    if not isinstance(shards_per_client, int | np.integer) or shards_per_client < 1:
        raise ConfigError(f"shards_per_client={shards_per_client} must be an integer >= 1")
    num_shards = num_clients * shards_per_client
    if num_shards > labels.shape[0]:
        raise ConfigError(
            f"num_clients={num_clients} x shards_per_client={shards_per_client} = {num_shards} "
            f"shards exceed the number of examples n={labels.shape[0]}"
        )
    shuffled = rng.permutation(labels.shape[0]).astype(np.int64)
    order = shuffled[np.argsort(labels[shuffled], kind="stable")]
    shards = np.array_split(order, num_shards)
    deal = rng.permutation(num_shards).reshape(num_clients, shards_per_client)
    return [np.concatenate([shards[s] for s in row]) for row in deal]


def compute_label_counts(
    labels: NDArray[np.integer], parts: list[IndexArray], num_classes: int
) -> NDArray[np.int64]:
    """``(num_clients, num_classes)`` count of each label on each client."""
    arr = np.asarray(labels, dtype=np.int64)
    return np.stack([np.bincount(arr[p], minlength=num_classes) for p in parts]).astype(np.int64)


def compute_label_skew(
    labels: NDArray[np.integer], parts: list[IndexArray], num_classes: int
) -> float:
    """Mean total-variation distance between each client's label distribution and the global one.

    0 for a perfectly iid split; approaches 1 - 1/C when every client holds a single class.
    """
    counts = compute_label_counts(labels, parts, num_classes).astype(np.float64)
    local = counts / counts.sum(axis=1, keepdims=True)
    total = counts.sum(axis=0) / counts.sum()
    return float(0.5 * np.abs(local - total).sum(axis=1).mean())
