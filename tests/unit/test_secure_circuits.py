"""The secure circuits' parameters: projection rows (protocol.md §3.2 v1.1: k ≥ 64)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from phalanx.errors import ConfigError, Reject
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.secure import SecureParams, make_circuit
from phalanx.rules.secure.cc import CenteredClippingCircuit
from phalanx.rules.secure.fedavg_nb import make_circuit as fedavg_circuit
from phalanx.rules.secure.fltrust import FLTrustCircuit
from phalanx.rules.secure.vector import MIN_ROWS, NormCircuit

D = 200


def _ctx() -> RuleContext:
    return RuleContext(dim=D, reference=np.ones(D, np.float32))


def test_circuits_default_to_64_rows_in_8_groups() -> None:
    # Prepare
    ctx = _ctx()
    # Execute
    circuits = [fedavg_circuit(make_rule("fedavg-nb"), ctx, frac_bits=16),
                CenteredClippingCircuit(make_rule("cc"), ctx, frac_bits=16),
                FLTrustCircuit(make_rule("fltrust"), ctx, frac_bits=16),
                make_circuit(make_rule("fltrust"), ctx, SecureParams(), 5)]
    # Assert
    assert MIN_ROWS == 64
    for c in circuits:
        assert isinstance(c, NormCircuit) and c.k == 64
        assert c.patterns(b"c" * 32).shape == (D, 8)
        assert c.n_scalars2() == 64 * c.k_row


@pytest.mark.parametrize("rows", [8, 16, 40, 56])
def test_fewer_than_64_rows_is_a_config_error_naming_the_value(rows: int) -> None:
    with pytest.raises(ConfigError, match=f"rows={rows} is below 64: the last client to commit "
                                          "can grind the coin"):
        NormCircuit(dim=D, frac_bits=16, rows=rows, sq_max=Fraction(1), sq_min=None,
                    norm_reason=Reject.NORM_BOUND)
    with pytest.raises(ConfigError, match=f"rows={rows} is below 64"):
        make_circuit(make_rule("fedavg-nb"), _ctx(), SecureParams(rows=rows), 5)


@pytest.mark.parametrize("rows", [65, 72, 128])
def test_rows_must_be_64_groups_of_8_at_most(rows: int) -> None:
    with pytest.raises(ConfigError, match=f"rows={rows} must be a multiple of 8"):
        NormCircuit(dim=D, frac_bits=16, rows=rows, sq_max=Fraction(1), sq_min=None,
                    norm_reason=Reject.NORM_BOUND)
