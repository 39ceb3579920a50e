"""The whole round with the contract: roles by sortition, votes, settlement, slashing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phalanx.errors import ConfigError
from phalanx.sim.chained import POOL, STAKE, build_chained, run_chained_round, stakes_by_peer
from phalanx.sim.config import SimConfig

ETHER = 10**18


@pytest.mark.parametrize("ledger", ["model", "embedded"])
def test_lying_voters_lose_no_stake_and_the_model_moves_only_when_accepted(ledger: str) -> None:
    # Prepare: 14 peers, committee 4 (t=1), 5 voters, 5 proposers; 30% malicious
    cfg = SimConfig(peers=14, committee=4, threshold=1, voters=5, malicious=0.3, rounds=3,
                    model="logreg", ledger=ledger, seed=2, secure=False)
    run = build_chained(cfg)
    # Execute
    rows = [run_chained_round(run, rnd) for rnd in range(1, cfg.rounds + 1)]
    # Assert: roles are disjoint and come from the chain
    for row in rows:
        info = row.extra["ledger"]
        assert not set(info["committee"]) & set(info["voters"])
        assert row.proposers == 5
        slashed_voters = {p for p, reason, _ in info["slashed"] if reason == "voter"}
        assert slashed_voters == set()  # losing is not a provable fault: unpaid, not slashed
    # honest peers never lose stake; every slashed peer is malicious here
    stakes = stakes_by_peer(run)
    for peer, stake in enumerate(stakes):
        if peer not in run.fed.malicious:
            assert stake >= STAKE
    slashed = {p for row in rows for p, reason, _ in row.extra["ledger"]["slashed"]}
    assert slashed <= run.fed.malicious
    # conservation: stakes + pool = what was put in
    pool = int(round(rows[-1].extra["ledger"]["pool_ether"] * ETHER))
    assert abs(sum(stakes) + pool - (cfg.peers * STAKE + POOL)) < 10**6
    assert rows[-1].accuracy > 0.5


def test_ledger_roles_must_fit_the_peers() -> None:
    with pytest.raises(ConfigError, match="must fit in peers=8"):
        SimConfig(peers=8, committee=5, voters=5, ledger="model")


def test_the_default_cli_run_is_secure_on_the_embedded_chain_with_its_summary(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from phalanx.cli import app

    # Execute: no --secure, no --ledger: the default is the whole system (small overrides)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["simulate", "--rounds", "1", "--peers", "12", "--voters",
                                      "3", "--committee", "4", "--model", "logreg", "--out",
                                      str(out), "--no-progress"])
    # Assert: a secure round on the embedded EVM
    assert result.exit_code == 0, result.output
    config = (out / "config.toml").read_text()
    assert "secure = true" in config and 'ledger = "embedded"' in config
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert row["extra"]["ledger"]["stands"] is True
    assert row["extra"]["aborted"] is None and row["extra"]["frac_bits"] >= 4
    assert row["proposers"] == 12 - 4 - 3
    # Assert: the end-of-run summary names who proposed, rejections, servers, slashes, rewards
    # and stakes (honest vs malicious, from registration), then the final accuracy
    proposers = " ".join(str(p) for p in row["extra"]["ledger"]["proposers"])
    lines = result.output.splitlines()
    for fragment in ("status: finished, 1/1 rounds", "malicious peers: [", "proposers (* "
                     "malicious):", "rejected inputs:", "servers identified as cheating:",
                     "slashed (* malicious):", "rewarded:", "honest peers",
                     "stake, start → after round 1: honest 100.00 → "):
        assert any(fragment in line for line in lines), (fragment, result.output)
    assert any(line.startswith("  round 1: ") and line.replace("*", "").endswith(proposers)
               for line in lines), result.output
    assert lines[-1].startswith("final_accuracy=")


def test_cli_checks_the_task_limits_before_deploying(tmp_path: Path) -> None:
    # 140 peers leave 133 proposers: refused by the task's limits, naming value and cap
    from typer.testing import CliRunner

    from phalanx.cli import app

    result = CliRunner().invoke(app, ["simulate", "--plaintext", "--ledger", "model",
                                      "--rounds", "1", "--peers", "140", "--voters", "3",
                                      "--committee", "4",
                                      "--model", "logreg", "--out", str(tmp_path / "run"),
                                      "--no-progress"])
    assert result.exit_code == 2
    assert "n_proposers=133 exceeds the contract's MAX_PROPOSERS=128" in result.output
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == ""  # no round ran
