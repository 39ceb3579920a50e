"""End to end on digits: the CLI writes what it promises, and fltrust resists sign-flip."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from phalanx.cli import app
from phalanx.sim.config import SimConfig
from phalanx.sim.run import simulate

#: the plaintext research mode (secure aggregation with the embedded ledger is the default)
PLAIN = dict(secure=False, ledger="none")
FAST = dict(peers=10, malicious=0.3, attack="sign-flip", rounds=6, model="logreg", lr=0.1, seed=3,
            **PLAIN)


def test_fltrust_ends_well_above_fedavg_under_sign_flip(tmp_path: Path) -> None:
    # Prepare / Execute: the same seed, the same federation, only the rule differs
    fltrust = simulate(SimConfig(rule="fltrust", **FAST), tmp_path / "fltrust")
    fedavg = simulate(SimConfig(rule="fedavg", **FAST), tmp_path / "fedavg")
    # Assert
    assert fltrust["final_accuracy"] > 0.8
    assert fltrust["final_accuracy"] > fedavg["final_accuracy"] + 0.3


def test_cli_run_directory_holds_what_is_promised(tmp_path: Path) -> None:
    # Prepare
    out = tmp_path / "run"
    args = ["simulate", "--plaintext", "--ledger", "none", "--peers", "6", "--rounds", "3",
            "--model", "logreg", "--seed", "1",
            "--malformed-peers", "3", "--out", str(out), "--no-progress"]
    # Execute
    result = CliRunner().invoke(app, args)
    # Assert
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("final_accuracy=") and 0.0 <= float(last.split("=")[1]) <= 1.0
    assert {p.name for p in out.iterdir()} == {"config.toml", "metrics.jsonl", "summary.json",
                                              "accuracy.png", "model.npy", "report.html"}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert {"accuracy", "loss", "attack_success_rate", "seconds", "rejected"} <= set(row)
        assert {"train", "aggregate", "evaluate"} <= set(row["seconds"])
        reasons = sorted(r["reason"] for r in row["rejected"])
        assert reasons == ["non-finite", "non-finite", "wrong-length"]
        assert {r["peer"] for r in row["rejected"]} == {6, 7, 8}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["model_sha256"] == hashlib.sha256((out / "model.npy").read_bytes()).hexdigest()
    assert summary["final_accuracy"] == rows[-1]["accuracy"]
    assert summary["rejected_inputs"] == 9
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'peers = 6' in (out / "config.toml").read_text()


def test_cli_reports_bad_values_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--peers", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "peers=0 must be >= 1" in result.output


def test_same_seed_same_run(tmp_path: Path) -> None:
    cfg = SimConfig(peers=5, rounds=2, model="logreg", attack="gaussian", seed=11, **PLAIN)
    a = simulate(cfg, tmp_path / "a")
    b = simulate(cfg, tmp_path / "b")
    assert a["final_accuracy"] == b["final_accuracy"]
    assert np.isclose(a["final_loss"], b["final_loss"])


def test_experiment_grid_writes_tables(tmp_path: Path) -> None:
    out = tmp_path / "grid"
    result = CliRunner().invoke(app, ["experiment", "--rules", "fedavg,median", "--attacks",
                                      "none,backdoor", "--peers", "5", "--rounds", "1",
                                      "--model", "logreg", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = (out / "results.md").read_text()
    assert "| fedavg |" in table and "| median |" in table and "ASR" in table
    assert len((out / "results.csv").read_text().splitlines()) == 5
    assert (out / "results.png").exists()


@pytest.mark.parametrize("attack", ["alie", "ipm", "min-max"])
def test_partial_knowledge_attacks_run(tmp_path: Path, attack: str) -> None:
    cfg = SimConfig(peers=6, rounds=1, model="logreg", attack=attack, knowledge="partial",
                    **PLAIN)
    assert 0.0 <= simulate(cfg, tmp_path / attack)["final_accuracy"] <= 1.0
