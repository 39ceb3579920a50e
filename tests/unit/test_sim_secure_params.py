"""frac_bits chosen automatically, and the committee capture warning."""

from __future__ import annotations

import pytest

from phalanx.errors import ConfigError
from phalanx.sim.config import SimConfig
from phalanx.sim.secure_params import capture_warning, choose_frac_bits


def test_choose_frac_bits_is_the_largest_the_circuit_accepts() -> None:
    # Prepare / Execute
    small = choose_frac_bits("fltrust", {}, dim=650, n_clients=20)
    cnn1m = choose_frac_bits("fltrust", {}, dim=1_260_554, n_clients=100)
    # Assert: 16 fits a small model; the 1.26M model needs fewer bits
    assert small == 16
    assert 4 <= cnn1m < 16


def test_choose_frac_bits_refuses_rules_without_secure_form() -> None:
    with pytest.raises(ConfigError, match="krum"):
        choose_frac_bits("krum", {}, dim=10, n_clients=5)


def test_capture_warning_names_a_safe_committee() -> None:
    warning = capture_warning(peers=20, malicious=0.3, committee=5, threshold=1)
    assert warning is not None and "0.483" in warning and "--committee 19 --threshold 6" in warning
    assert capture_warning(peers=100, malicious=0.01, committee=5, threshold=1) is None
    assert capture_warning(peers=20, malicious=0.0, committee=5, threshold=1) is None


def test_frac_bits_and_reproducible_secrets_are_validated() -> None:
    assert SimConfig(secure=True, frac_bits=12, reproducible_secrets=True).frac_bits == 12
    with pytest.raises(ConfigError, match="frac_bits=3"):
        SimConfig(secure=True, frac_bits=3)
    with pytest.raises(ConfigError, match="reproducible_secrets=True needs secure"):
        SimConfig(reproducible_secrets=True, secure=False, ledger="none")
    with pytest.raises(ConfigError, match="reproducible_secrets='yes'"):
        SimConfig(secure=True, reproducible_secrets="yes")  # type: ignore[arg-type]
