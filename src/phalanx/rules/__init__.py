"""Aggregation rules: one definition each, a plaintext backend here, a secure one in ``secure``."""

from __future__ import annotations

from typing import Any

from phalanx.errors import ConfigError
from phalanx.rules.base import Aggregate, Rejection, Rule, RuleContext
from phalanx.rules.baselines import Krum, Median, MultiKrum, TrimmedMean
from phalanx.rules.cc import CenteredClipping, CenteredClippingIterative
from phalanx.rules.fedavg import FedAvg, FedAvgNormBounded
from phalanx.rules.fltrust import FLTrust
from phalanx.rules.rsa import RobustStochasticAggregation

RULES: dict[str, type[Rule]] = {
    cls.name: cls
    for cls in (
        FedAvg,
        FedAvgNormBounded,
        FLTrust,
        CenteredClipping,
        CenteredClippingIterative,
        RobustStochasticAggregation,
        Krum,
        MultiKrum,
        Median,
        TrimmedMean,
    )
}


def make_rule(name: str, *, secure: bool = False, **params: Any) -> Rule:
    """Build a rule by name; ConfigError names the unknown rule, parameter or incompatibility."""
    if name not in RULES:
        raise ConfigError(f"rule={name!r} is unknown; choose one of {sorted(RULES)}")
    cls = RULES[name]
    if secure and not cls.secure_compatible:
        compatible = sorted(n for n, c in RULES.items() if c.secure_compatible)
        raise ConfigError(
            f"rule={name!r} has no secure form (it needs comparisons across clients); "
            f"secure rules are {compatible}"
        )
    try:
        return cls(**params)
    except TypeError as e:
        raise ConfigError(f"bad parameters {params} for rule={name!r}: {e}") from e


__all__ = ["RULES", "Aggregate", "Rejection", "Rule", "RuleContext", "make_rule"]
