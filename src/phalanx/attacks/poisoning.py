"""Poisoning attacks as pure functions of what the attacker knows.

Two kinds: *data* attacks change the malicious clients' training data before they train
(:func:`poison_data`: label-flip, backdoor), *model* attacks replace their trained updates
(:func:`craft_updates`: sign-flip, scaling, gaussian, ALIE, IPM, min-max, free-rider, and the
optional model-replacement boost of the backdoor).

Knowledge: under ``OMNISCIENT`` the attacker sees this round's honest updates and uses them together
with its own benign updates as the benign set; under ``PARTIAL`` it only has its own k benign
updates and estimates the benign statistics from them (``honest`` is never read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from statistics import NormalDist
from typing import TypeVar

import numpy as np
import torch
from numpy.typing import NDArray

from phalanx.errors import ConfigError, require_positive

FloatMat = NDArray[np.float32]
E = TypeVar("E", bound=Enum)


class Attack(Enum):
    """The poisoning attack the malicious clients run."""

    NONE = "none"
    LABEL_FLIP = "label-flip"
    SIGN_FLIP = "sign-flip"
    SCALING = "scaling"
    GAUSSIAN = "gaussian"
    ALIE = "alie"
    IPM = "ipm"
    MIN_MAX = "min-max"
    BACKDOOR = "backdoor"
    FREE_RIDER = "free-rider"


class Knowledge(Enum):
    """What a model attack may read: every honest update of the round, or only its own."""

    OMNISCIENT = "omniscient"
    PARTIAL = "partial"


DATA_ATTACKS = frozenset({Attack.LABEL_FLIP, Attack.BACKDOOR})
#: Attacks that need benign statistics (honest updates under OMNISCIENT).
STATISTICAL_ATTACKS = frozenset({Attack.ALIE, Attack.IPM, Attack.MIN_MAX})
FREE_RIDER_MODES = ("zero", "stale")
MIN_MAX_DIRECTIONS = ("unit", "std", "sign")


#: The parameters each attack reads (``AttackSpec`` fields); any other is a ConfigError.
ATTACK_PARAMS: dict[Attack, tuple[str, ...]] = {
    Attack.NONE: (),
    Attack.LABEL_FLIP: (),
    Attack.SIGN_FLIP: ("flip_scale",),
    Attack.SCALING: ("scale",),
    Attack.GAUSSIAN: ("sigma",),
    Attack.ALIE: ("alie_z",),
    Attack.IPM: ("ipm_epsilon",),
    Attack.MIN_MAX: ("min_max_direction",),
    Attack.BACKDOOR: ("backdoor_target", "backdoor_fraction", "backdoor_boost"),
    Attack.FREE_RIDER: ("free_rider",),
}


def validate_attack_params(attack: Attack | str, params: dict[str, object]) -> None:
    """ConfigError unless every name in ``params`` is a parameter ``attack`` reads."""
    kind = coerce_enum(Attack, attack, "attack")
    reads = ATTACK_PARAMS[kind]
    for name in params:
        if name not in reads:
            value = params[name]
            known = f"it reads {list(reads)}" if reads else "it takes no parameters"
            raise ConfigError(f"attack parameter {name}={value!r} is not read by "
                              f"attack={kind.value!r}: {known}")


@dataclass(frozen=True)
class AttackSpec:
    """An attack and its parameters (validated; ConfigError names the field).

    Attributes:
        attack: which attack (an :class:`Attack` or its string value).
        knowledge: OMNISCIENT or PARTIAL (an enum or its string value).
        scale: lambda of the scaling attack (update × lambda).
        flip_scale: magnitude of the sign-flip attack (update × −flip_scale). 1 is the plain
            bit flip; the default 4 makes 20% attackers cancel the honest mean exactly, so that
            an undefended mean stops learning (any larger value reverses it).
        sigma: standard deviation of the gaussian attack's N(0, sigma²) update.
        ipm_epsilon: epsilon of IPM (update = −epsilon · benign mean). Xie et al. 2020 use 0.1
            (the aggregate shrinks but keeps its sign when few attack) and 100 (it flips);
            0.5 is in between: with 20-40% malicious clients it already cancels most of the mean.
        alie_z: ALIE's z; ``None`` computes z_max from the number of clients (Baruch et al.).
        min_max_direction: min-max perturbation: "unit" (−mean/‖mean‖), "std" (−std), "sign".
        backdoor_target: the label triggered images are relabelled to.
        backdoor_fraction: share of the attacker's local examples that get the trigger.
        backdoor_boost: model-replacement factor on the backdoored update (1 = none).
        free_rider: "zero" (send a zero update) or "stale" (re-send the last global update).
    """

    attack: Attack
    knowledge: Knowledge = Knowledge.OMNISCIENT
    scale: float = 10.0
    flip_scale: float = 4.0
    sigma: float = 1.0
    ipm_epsilon: float = 0.5
    alie_z: float | None = None
    min_max_direction: str = "unit"
    backdoor_target: int = 0
    backdoor_fraction: float = 0.5
    backdoor_boost: float = 1.0
    free_rider: str = "zero"

    def __post_init__(self) -> None:
        object.__setattr__(self, "attack", coerce_enum(Attack, self.attack, "attack"))
        object.__setattr__(self, "knowledge", coerce_enum(Knowledge, self.knowledge, "knowledge"))
        for name in ("scale", "flip_scale", "sigma", "ipm_epsilon", "backdoor_boost"):
            require_number(name, getattr(self, name))
            require_positive(name, getattr(self, name))
        if self.alie_z is not None:
            require_number("alie_z", self.alie_z)
            require_positive("alie_z", self.alie_z)
        if self.min_max_direction not in MIN_MAX_DIRECTIONS:
            raise ConfigError(
                f"min_max_direction={self.min_max_direction!r} must be one of {MIN_MAX_DIRECTIONS}"
            )
        require_number("backdoor_fraction", self.backdoor_fraction)
        if (isinstance(self.backdoor_target, bool) or not isinstance(self.backdoor_target, int)
                or self.backdoor_target < 0):
            raise ConfigError(f"backdoor_target={self.backdoor_target} must be an integer >= 0")
        if not (math.isfinite(self.backdoor_fraction) and 0 < self.backdoor_fraction <= 1):
            raise ConfigError(f"backdoor_fraction={self.backdoor_fraction} must be in (0, 1]")
        if self.free_rider not in FREE_RIDER_MODES:
            raise ConfigError(f"free_rider={self.free_rider!r} must be one of {FREE_RIDER_MODES}")

    @property
    def is_data_attack(self) -> bool:
        """True when the attack poisons training data (label-flip, backdoor)."""
        return self.attack in DATA_ATTACKS


def require_number(name: str, value: object) -> None:
    """A real number (not a bool, not a string); else ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}={value!r} must be a number")


def coerce_enum(cls: type[E], value: E | str, field: str) -> E:
    """``value`` as a member of ``cls``; unknown strings raise ConfigError naming ``field``."""
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError as e:
        choices = [m.value for m in cls]
        raise ConfigError(f"{field}={value!r} is unknown; choose one of {choices}") from e


# ---------------------------------------------------------------------------------------------
# Data attacks


def poison_data(
    spec: AttackSpec, x: torch.Tensor, y: torch.Tensor, num_classes: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The malicious client's training data under a data attack (new tensors; inputs untouched).

    label-flip: every label y → C − 1 − y (Fang et al. 2020; Tolpegin et al. 2020).
    backdoor: a random ``backdoor_fraction`` of the examples get :func:`add_trigger` and the
    label ``backdoor_target``; the rest stay clean (Bagdasaryan et al. 2020, pixel pattern).
    Every other attack returns copies of ``(x, y)``.
    """
    if spec.attack is Attack.LABEL_FLIP:
        return x.clone(), (num_classes - 1 - y).to(y.dtype)
    if spec.attack is not Attack.BACKDOOR:
        return x.clone(), y.clone()
    if spec.backdoor_target >= num_classes:
        raise ConfigError(
            f"backdoor_target={spec.backdoor_target} needs < num_classes={num_classes}"
        )
    n = x.shape[0]
    count = max(1, round(spec.backdoor_fraction * n))
    chosen = torch.from_numpy(np.sort(rng.choice(n, size=count, replace=False)).astype(np.int64))
    x_out, y_out = x.clone(), y.clone()
    x_out[chosen] = add_trigger(x[chosen])
    y_out[chosen] = spec.backdoor_target
    return x_out, y_out


def compute_trigger_size(height: int) -> int:
    """Side of the square trigger: 4 pixels on 28x28 images, 2 on 8x8."""
    return max(2, height // 7)


def add_trigger(x: torch.Tensor) -> torch.Tensor:
    """A copy of images ``(N, C, H, W)`` with a bright (1.0) square in the bottom-right corner."""
    size = compute_trigger_size(int(x.shape[-2]))
    out = x.clone()
    out[..., -size:, -size:] = 1.0
    return out


def attack_success_rate(
    model: torch.nn.Module, x_test: torch.Tensor, y_test: torch.Tensor, target: int
) -> float:
    """Share of triggered test images of non-target classes that ``model`` labels ``target``."""
    keep = y_test != target
    if not bool(keep.any()):
        raise ConfigError(f"no test image has a label other than target={target}")
    model.eval()
    hits = 0
    with torch.no_grad():
        triggered = add_trigger(x_test[keep])
        for start in range(0, triggered.shape[0], 1024):
            pred = model(triggered[start : start + 1024]).argmax(dim=1)
            hits += int((pred == target).sum())
    return hits / int(keep.sum())


# ---------------------------------------------------------------------------------------------
# Model attacks


def craft_updates(
    spec: AttackSpec,
    own_benign: NDArray[np.floating],
    honest: NDArray[np.floating] | None,
    *,
    rng: np.random.Generator,
    previous_global_update: NDArray[np.floating] | None = None,
    num_clients: int | None = None,
) -> FloatMat:
    """The k malicious updates ``(k, d)`` sent in place of the attackers' benign ones.

    ``own_benign`` are the updates the k malicious clients computed honestly (on poisoned data for
    data attacks). ``honest`` holds the honest clients' updates of this round under OMNISCIENT
    knowledge and is never read under PARTIAL. ``num_clients`` (all clients of the round) is
    needed by ALIE under PARTIAL knowledge when ``alie_z`` is unset; under OMNISCIENT it
    defaults to k + h. Identity (a copy) for NONE and the data attacks without boost.
    """
    own = as_matrix(own_benign, "own_benign")
    kind = spec.attack
    if kind in (Attack.NONE, Attack.LABEL_FLIP):
        return own.copy()
    if kind is Attack.BACKDOOR:
        return (own * np.float32(spec.backdoor_boost)).astype(np.float32)
    if kind is Attack.SIGN_FLIP:
        return (own * np.float32(-spec.flip_scale)).astype(np.float32)
    if kind is Attack.SCALING:
        return (own * np.float32(spec.scale)).astype(np.float32)
    if kind is Attack.GAUSSIAN:
        noise = rng.standard_normal(own.shape, dtype=np.float32)
        return (noise * np.float32(spec.sigma)).astype(np.float32)
    if kind is Attack.FREE_RIDER:
        return compute_free_rider(spec, own, previous_global_update)
    benign = get_benign_set(spec, own, honest)
    if kind is Attack.ALIE:
        z = spec.alie_z
        if z is None:
            n = num_clients if num_clients is not None else default_num_clients(spec, benign)
            z = compute_alie_z(n, own.shape[0])
        return tile(compute_alie(benign, z), own.shape[0])
    if kind is Attack.IPM:
        return tile(-np.float32(spec.ipm_epsilon) * benign.mean(axis=0), own.shape[0])
    return tile(compute_min_max(benign, spec.min_max_direction), own.shape[0])


def as_matrix(updates: NDArray[np.floating], name: str) -> FloatMat:
    """A non-empty ``(k, d)`` float32 matrix."""
    arr = np.asarray(updates, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ConfigError(f"{name} has shape {arr.shape}, expected non-empty (k, d)")
    return arr


def tile(vec: NDArray[np.floating], k: int) -> FloatMat:
    """``k`` copies of one malicious update (every attacker sends the same vector)."""
    return np.tile(np.asarray(vec, dtype=np.float32), (k, 1))


def get_benign_set(
    spec: AttackSpec, own: FloatMat, honest: NDArray[np.floating] | None
) -> FloatMat:
    """The benign updates the attacker knows: honest + own under OMNISCIENT, own under PARTIAL."""
    if spec.knowledge is Knowledge.PARTIAL:
        return own
    if honest is None:
        raise ConfigError(
            f"attack={spec.attack.value} with knowledge=omniscient needs the honest updates "
            "(honest=None)"
        )
    h = as_matrix(honest, "honest")
    if h.shape[1] != own.shape[1]:
        raise ConfigError(f"honest has d={h.shape[1]}, own_benign has d={own.shape[1]}")
    return np.concatenate([h, own])


def default_num_clients(spec: AttackSpec, benign: FloatMat) -> int:
    """n for ALIE's z_max: every update seen under OMNISCIENT; unknown under PARTIAL."""
    if spec.knowledge is Knowledge.PARTIAL:
        raise ConfigError(
            "attack=alie with knowledge=partial needs num_clients (or alie_z) to set z_max"
        )
    return int(benign.shape[0])


def compute_alie_z(num_clients: int, num_malicious: int) -> float:
    """z_max of "A Little Is Enough" (Baruch et al. 2019, §4): s = ⌊n/2 + 1⌋ − m supporters.

    z_max = Φ⁻¹((n − s)/n): the attacker shifts each coordinate by z_max std devs, so that it still
    looks closer to the mean than s honest clients do.
    """
    n, m = num_clients, num_malicious
    supporters = n // 2 + 1 - m
    if m < 1 or n <= m or supporters <= 0:
        raise ConfigError(
            f"alie needs 1 <= malicious m={m} < n/2 + 1 of num_clients n={n} (supporters s>0)"
        )
    return NormalDist().inv_cdf((n - supporters) / n)


def compute_alie(benign: FloatMat, z: float) -> NDArray[np.float32]:
    """mean − z · std per coordinate (population std of the benign set)."""
    wide = benign.astype(np.float64)
    out: NDArray[np.float32] = (wide.mean(axis=0) - z * wide.std(axis=0)).astype(np.float32)
    return out


def compute_min_max(benign: FloatMat, direction: str) -> NDArray[np.float32]:
    """AGR-agnostic Min-Max (Shejwalkar & Houmansadr, NDSS 2021, §IV-B).

    The malicious update is mean + γ·p for the perturbation p (``direction``) and the largest γ
    with max_i ‖mean + γp − b_i‖ ≤ L = max_{i,j} ‖b_i − b_j‖. The paper finds γ by binary search;
    since each constraint is a convex quadratic in γ, q·γ² − 2c_i·γ + a_i − L² ≤ 0 with
    a_i = ‖b_i − mean‖², c_i = ⟨b_i − mean, p⟩, q = ‖p‖², and γ = 0 is feasible (a_i ≤ L²),
    the search converges to γ* = min_i (c_i + √(c_i² + q(L² − a_i)))/q, computed here exactly in
    one pass over the updates (a binary search costs a pass per step: 20 s for 50 × 1.26M).
    """
    centered = benign.astype(np.float64)
    mean = centered.mean(axis=0)
    centered -= mean
    p = compute_perturbation(centered, mean, direction)
    q = float(p @ p)
    if q == 0.0:
        unmoved: NDArray[np.float32] = mean.astype(np.float32)
        return unmoved
    sq = np.einsum("ij,ij->i", centered, centered)
    limit2 = compute_max_pairwise_sq(centered, sq)
    c = centered @ p
    roots = (c + np.sqrt(c * c + q * np.maximum(limit2 - sq, 0.0))) / q
    out: NDArray[np.float32] = (mean + float(roots.min()) * p).astype(np.float32)
    return out


def compute_perturbation(
    benign: NDArray[np.float64], mean: NDArray[np.float64], direction: str
) -> NDArray[np.float64]:
    """Min-max's perturbation vector p (the attack moves the mean along p); ``benign`` may be
    centered (only its per-coordinate std is used)."""
    if direction == "std":
        p: NDArray[np.float64] = -benign.std(axis=0)
    elif direction == "sign":
        p = -np.sign(mean)
    else:
        norm = float(np.linalg.norm(mean))
        p = -mean / norm if norm > 0 else np.zeros_like(mean)
    return p


def compute_max_pairwise_distance(benign: NDArray[np.float64]) -> float:
    """max_{i,j} ‖b_i − b_j‖ (the benign diameter)."""
    centered = benign - benign.mean(axis=0)
    sq = np.einsum("ij,ij->i", centered, centered)
    return float(np.sqrt(compute_max_pairwise_sq(centered, sq)))


def compute_max_pairwise_sq(centered: NDArray[np.float64], sq: NDArray[np.float64]) -> float:
    """max_{i,j} ‖b_i − b_j‖² from the Gram matrix of centered rows (clamped at 0)."""
    d2 = sq[:, None] + sq[None, :] - 2.0 * (centered @ centered.T)
    return max(0.0, float(d2.max()))


def compute_free_rider(
    spec: AttackSpec, own: FloatMat, previous_global_update: NDArray[np.floating] | None
) -> FloatMat:
    """Zero updates, or the previous round's global update re-sent ("stale").

    In the first round there is no previous global update; a stale free-rider then sends zeros.
    """
    if spec.free_rider == "zero" or previous_global_update is None:
        return np.zeros_like(own)
    prev = np.asarray(previous_global_update, dtype=np.float32)
    if prev.shape != (own.shape[1],):
        raise ConfigError(
            f"previous_global_update has shape {prev.shape}, expected ({own.shape[1]},)"
        )
    return tile(prev, own.shape[0])
