"""The simulator's configuration: defaults, TOML loading, clear errors for bad keys and values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from phalanx.errors import ConfigError
from phalanx.sim.config import SimConfig, dump_toml, load_config


def test_defaults_are_the_documented_demo() -> None:
    cfg = SimConfig()
    assert (cfg.dataset, cfg.peers, cfg.malicious, cfg.attack, cfg.rule, cfg.rounds) == (
        "digits", 20, 0.2, "sign-flip", "fltrust", 20)
    assert cfg.num_malicious == 4


def test_default_is_the_whole_system_secure_with_the_embedded_ledger(tmp_path: Path) -> None:
    # Prepare: a TOML that says nothing of secure or ledger
    (tmp_path / "run.toml").write_text("peers = 20\n")
    # Execute / Assert: the dataclass, an empty load and the TOML agree
    for cfg in (SimConfig(), load_config(), load_config(tmp_path / "run.toml")):
        assert (cfg.secure, cfg.ledger, cfg.committee, cfg.threshold) == (True, "embedded", 5, 1)


def test_toml_can_choose_the_plaintext_research_mode(tmp_path: Path) -> None:
    (tmp_path / "run.toml").write_text('secure = false\nledger = "none"\npeers = 4\n')
    cfg = load_config(tmp_path / "run.toml")
    assert (cfg.secure, cfg.ledger, cfg.peers) == (False, "none", 4)


@pytest.mark.parametrize("rule", ["fedavg", "krum", "median"])
def test_a_rule_without_a_secure_form_says_to_add_plaintext(rule: str) -> None:
    with pytest.raises(ConfigError, match=rf"rule='{rule}' has no secure form.*--plaintext"):
        load_config(rule=rule)
    assert load_config(rule=rule, secure=False).rule == rule


def test_a_federation_too_small_for_the_ledger_roles_says_ledger_none() -> None:
    with pytest.raises(ConfigError, match=r"peers=5 .*--ledger none"):
        load_config(peers=5)
    assert load_config(peers=5, ledger="none").peers == 5


def test_toml_round_trip_and_overrides(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "run.toml"
    path.write_text('peers = 7\nrule = "cc"\nsecure = false\nledger = "none"\n'
                    '[rule_params]\ntau = 2.5\n')
    # Execute
    cfg = load_config(path, rounds=3, peers=None)
    again = load_config(None, **tomllib.loads(dump_toml(cfg.to_dict())))
    # Assert
    assert (cfg.peers, cfg.rule, cfg.rounds, dict(cfg.rule_params)) == (7, "cc", 3, {"tau": 2.5})
    assert again == cfg


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("peerz = 3", r"unknown config key\(s\) \['peerz'\]"),
        ("peers = 0", "peers=0 must be >= 1"),
        ("peers = 'many'", "peers='many' must be an integer"),
        ("malicious = 1.5", r"malicious=1.5 must be in \[0, 1\)"),
        ("rule = 'majority'", "rule='majority' is unknown"),
        ("attack = 'nuke'", "attack='nuke' is unknown"),
        ("dataset = 'cifar'", "dataset='cifar' is unknown"),
        ("partition = 'dirichlet'\nalpha = 0", "alpha=0 must be a number > 0"),
        ("rule = 'krum'\nsecure = true", "rule='krum' has no secure form"),
        ("secure = true\ncommittee = 5\nthreshold = 2", "committee=5 must be >= 3\\*threshold"),
        ("rule_params = 3", "rule_params=3 must be a table"),
        ("[rule_params]\ntau = -1\n", "bad parameters"),
        ("rule = 'fedavg-nb'\n[rule_params]\ntau = -1\n", "tau=-1"),
        ("peers = [", "not valid TOML"),
        ('secure = "false"', "secure='false' must be a boolean"),
        ("data_dir = 5", "data_dir=5 must be a string"),
        ("secure = false\nledger = 'none'\ncommittee = 7", "committee=7 needs secure=true"),
        ("secure = false\nledger = 'none'\nfrac_bits = 12", "frac_bits=12 needs secure=true"),
        ("secure = true\nrule = 'fedavg'", "fedavg-nb"),
        ("attack = 'scaling'\n[attack_params]\nscal = 20", "scal=20 is not read"),
        ("attack = 'gaussian'\n[attack_params]\nscale = 2", "scale=2 is not read"),
        ("model = 'a b:c'", "package.module:function"),
        ("dataset = 'idx:'", "needs a path"),
    ],
)
def test_bad_config_names_the_key_and_value(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_the_cli_names_exactly_the_rules_without_a_secure_form() -> None:
    from phalanx.cli.sim import PLAIN_ONLY
    from phalanx.rules import RULES

    assert PLAIN_ONLY.split(", ") == [n for n, c in RULES.items() if not c.secure_compatible]
