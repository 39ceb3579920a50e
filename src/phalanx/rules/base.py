"""One definition per aggregation rule, shared by the plaintext and the secure backend.

A rule is three steps (protocol.md §3.3): ``prepare`` runs on the client and turns a raw update into
the rule's input (normalized, clipped or signed); ``check`` is the validity predicate the servers
enforce on a prepared input; ``combine`` turns the valid inputs into the aggregate. The plaintext
backend runs the three on float vectors (:meth:`Rule.aggregate`); the secure backend
(``phalanx.rules.secure``) runs the same ``prepare`` on the client and proves ``check`` and computes
``combine`` on shares.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ConfigError, Reject

FloatVec = NDArray[np.float32]
FloatMat = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Public inputs of one aggregation.

    Attributes:
        dim: length d of every update.
        reference: the rule's public vector: g_0 for fltrust (the root-dataset update), the center v
            for cc (last round's global update). ``None`` for rules that need none.
        num_byzantine: the bound f on malicious inputs assumed by krum and trimmed-mean.
    """

    dim: int
    reference: FloatVec | None = None
    num_byzantine: int = 0

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"dim={self.dim} must be >= 1")
        if self.num_byzantine < 0:
            raise ConfigError(f"num_byzantine={self.num_byzantine} must be >= 0")
        if self.reference is not None and self.reference.shape != (self.dim,):
            raise ConfigError(
                f"reference has shape {self.reference.shape}, expected ({self.dim},)"
            )


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused input: its index among the round's inputs, the reason and a detail string."""

    index: int
    reason: Reject
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Aggregate:
    """The result of one aggregation.

    ``revealed`` holds what the rule discloses beyond the output (fltrust: the sum of trust
    weights D), so the plaintext and secure backends report the same things. ``zero_trust``:
    valid inputs whose revealed fltrust trust bit is 0 (counted with weight 0, in neither
    ``accepted`` nor ``rejected``; only with ``SecureParams.trust_bit``).
    """

    vector: FloatVec
    accepted: tuple[int, ...]
    rejected: tuple[Rejection, ...]
    revealed: dict[str, float] = field(default_factory=dict)
    zero_trust: tuple[int, ...] = ()


class Rule(ABC):
    """An aggregation rule: client-side ``prepare``, validity ``check`` and ``combine``."""

    name: ClassVar[str]
    #: True when the rule compiles to the secure backend (protocol.md §3.3).
    secure_compatible: ClassVar[bool] = False
    #: True when ``RuleContext.reference`` must be set.
    needs_reference: ClassVar[bool] = False

    def prepare(self, update: FloatVec, ctx: RuleContext) -> FloatVec:
        """Client side: the rule's input derived from a raw update (identity by default)."""
        return np.array(update, dtype=np.float32, copy=True)

    def check(self, prepared: FloatVec, ctx: RuleContext) -> Rejection | None:
        """Validity of one prepared input: ``None`` if valid, else the reason (index -1)."""
        return check_shape_and_finite(prepared, ctx)

    @abstractmethod
    def combine(self, accepted: FloatMat, ctx: RuleContext) -> FloatVec:
        """The aggregate of the valid inputs, stacked as rows of ``accepted`` (n >= 1)."""

    def revealed(self, accepted: FloatMat, ctx: RuleContext) -> dict[str, float]:
        """What the rule discloses beyond its output (nothing by default)."""
        return {}

    def min_inputs(self, ctx: RuleContext) -> int:
        """The fewest valid inputs ``combine`` accepts; rules with feasibility bounds raise."""
        return 1

    def aggregate(self, inputs: Sequence[FloatVec] | FloatMat, ctx: RuleContext) -> Aggregate:
        """The plaintext backend: check every prepared input, then combine the valid ones.

        ``inputs`` is a sequence of vectors or an (n, d) float32 matrix (not copied when every
        row is valid). An empty valid set yields the zero update (the model stays as it is).
        """
        self.validate_context(ctx)
        rejected: list[Rejection] = []
        accepted: list[int] = []
        for index, vec in enumerate(inputs):
            verdict = self.check(vec, ctx)
            if verdict is None:
                accepted.append(index)
            else:
                rejected.append(Rejection(index, verdict.reason, verdict.detail))
        if len(accepted) < max(1, self.min_inputs(ctx)):
            if accepted and self.min_inputs(ctx) > len(accepted):
                raise ConfigError(
                    f"rule {self.name} needs at least {self.min_inputs(ctx)} valid inputs "
                    f"with num_byzantine={ctx.num_byzantine}, got {len(accepted)}"
                )
            return Aggregate(np.zeros(ctx.dim, np.float32), (), tuple(rejected))
        stacked = stack_rows(inputs, accepted)
        vector, revealed = self.combine_and_reveal(stacked, ctx)
        return Aggregate(vector.astype(np.float32, copy=False), tuple(accepted), tuple(rejected),
                         revealed)

    def combine_and_reveal(
        self, accepted: FloatMat, ctx: RuleContext
    ) -> tuple[FloatVec, dict[str, float]]:
        """``combine`` and ``revealed`` together; rules override it to share work between them."""
        return self.combine(accepted, ctx), self.revealed(accepted, ctx)

    def validate_context(self, ctx: RuleContext) -> None:
        """Raise ConfigError when the context lacks what the rule needs."""
        if self.needs_reference and ctx.reference is None:
            raise ConfigError(f"rule {self.name} needs ctx.reference (got None)")


def stack_rows(inputs: Sequence[FloatVec] | FloatMat, rows: Sequence[int]) -> FloatMat:
    """The rows ``rows`` of ``inputs`` as one (len(rows), d) float32 matrix (no copy if all)."""
    if isinstance(inputs, np.ndarray) and inputs.ndim == 2 and inputs.dtype == np.float32:
        if len(rows) == inputs.shape[0]:
            return inputs
        return inputs[np.asarray(rows, dtype=np.intp)]
    return np.stack([np.asarray(inputs[i], dtype=np.float32) for i in rows])


def check_shape_and_finite(vec: FloatVec, ctx: RuleContext) -> Rejection | None:
    """The checks every rule makes: the agreed length and only finite values."""
    return check_shape_and_norm(vec, ctx)[0]


def check_shape_and_norm(vec: FloatVec, ctx: RuleContext) -> tuple[Rejection | None, float]:
    """Length and finiteness in one pass, returning ‖vec‖ for the rules that bound it.

    A NaN or ±inf coordinate makes ⟨vec, vec⟩ NaN or inf, so a finite norm proves every
    coordinate finite; only when it is not are the coordinates inspected (a finite vector whose
    squared norm overflows float32 is valid here, with norm inf).
    """
    if vec.ndim != 1 or vec.shape[0] != ctx.dim:
        reason = Rejection(-1, Reject.WRONG_LENGTH, f"shape {vec.shape}, expected ({ctx.dim},)")
        return reason, float("nan")
    norm = l2_norm(vec)
    if not np.isfinite(norm) and not bool(np.isfinite(vec).all()):
        return Rejection(-1, Reject.NON_FINITE, "NaN or inf in update"), norm
    return None, norm


def l2_norm(vec: FloatVec) -> float:
    """Euclidean norm: one BLAS dot on the float32 data, the root taken in float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.float64(np.dot(vec, vec))))


def clip_to_norm(vec: FloatVec, bound: float) -> FloatVec:
    """``vec · min(1, bound/‖vec‖)``: the clipping of fedavg-nb and cc (a new array)."""
    norm = l2_norm(vec)
    scale = 1.0 if norm <= bound or norm == 0.0 else bound / norm
    return (vec * np.float32(scale)).astype(np.float32, copy=False)
