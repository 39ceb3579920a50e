"""Run directories: unique under concurrency, refused when reused, a status on Ctrl-C, no NaN in
JSON, the model saved with its hash, and --resume equal to an uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import phalanx
from phalanx.cli import app
from phalanx.sim import run as sim_run
from phalanx.sim.config import SimConfig, load_config
from phalanx.sim.federation import RoundMetrics
from phalanx.sim.rundir import dumps_finite

SRC = str(Path(phalanx.__file__).resolve().parents[1])
#: the plaintext research mode (secure aggregation with the embedded ledger is the default)
PLAIN = dict(secure=False, ledger="none")
SMALL = ["--plaintext", "--ledger", "none", "--peers", "4", "--rounds", "1", "--model", "logreg",
         "--no-progress"]


def strict_json(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in JSON")

    return json.loads(text, parse_constant=refuse)


def phalanx_process(args: list[str], cwd: Path, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, "-m", "phalanx.cli", *args], cwd=cwd, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_two_simultaneous_runs_get_two_directories(tmp_path: Path) -> None:
    # Execute: two processes started together, default run directories under ./runs
    procs = [phalanx_process(["simulate", *SMALL], tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    # Assert
    assert [p.returncode for p in procs] == [0, 0], outputs
    dirs = sorted((tmp_path / "runs").iterdir())
    assert len(dirs) == 2
    for d in dirs:
        assert len((d / "metrics.jsonl").read_text().splitlines()) == 1
        assert strict_json((d / "summary.json").read_text())["status"] == "finished"


def test_same_second_same_config_gets_a_suffix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sim_run, "timestamp", lambda: "20260101-000000")
    cfg = SimConfig()
    first, second = sim_run.default_run_dir(cfg, tmp_path), sim_run.default_run_dir(cfg, tmp_path)
    assert first != second and second.name == first.name + "-2"


def test_overwrite_replaces_the_old_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    for rounds in ("2", "1"):
        result = CliRunner().invoke(app, ["simulate", *SMALL, "--rounds", rounds, "--out",
                                          str(out), "--overwrite"])
        assert result.exit_code == 0, result.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    assert strict_json((out / "summary.json").read_text())["rounds"] == 1  # type: ignore[index]


def test_diverged_run_writes_null_with_the_reason(tmp_path: Path, monkeypatch) -> None:
    # Prepare: a round player whose model diverged (loss NaN, a revealed inf)
    build = sim_run.make_round_player

    def diverging(cfg: SimConfig, data: object = None) -> sim_run.RoundPlayer:
        player = build(cfg, None)

        def play(rnd: int) -> object:
            m = player.play(rnd)
            m.loss, m.revealed = float("nan"), {"trust_weight_sum": float("inf")}
            return m

        return sim_run.RoundPlayer(play, player.fed)  # type: ignore[arg-type]

    monkeypatch.setattr(sim_run, "make_round_player", diverging)
    # Execute
    sim_run.simulate(SimConfig(peers=4, rounds=2, model="logreg", **PLAIN), tmp_path / "nan")
    # Assert: strict JSON everywhere, null plus the reason
    summary = strict_json((tmp_path / "nan" / "summary.json").read_text())
    rows = [strict_json(x) for x in (tmp_path / "nan" / "metrics.jsonl").read_text().splitlines()]
    assert isinstance(summary, dict) and summary["final_loss"] is None
    assert summary["non_finite"]["final_loss"] == "nan"
    assert rows[0] is not None and rows[0]["loss"] is None  # type: ignore[index]
    assert rows[0]["non_finite"] == {"loss": "nan",  # type: ignore[index]
                                     "revealed.trust_weight_sum": "inf"}
    assert "report.html" in {p.name for p in (tmp_path / "nan").iterdir()}


def test_interrupted_in_process_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    # Prepare
    cfg = SimConfig(peers=5, rounds=4, model="logreg", seed=2, **PLAIN)
    full = sim_run.simulate(cfg, tmp_path / "full")

    def stop_after_two(m: RoundMetrics) -> None:
        if m.round == 2:
            raise KeyboardInterrupt

    # Execute
    with pytest.raises(KeyboardInterrupt):
        sim_run.simulate(cfg, tmp_path / "cut", on_round=stop_after_two)
    cut = strict_json((tmp_path / "cut" / "summary.json").read_text())
    resumed = sim_run.resume(tmp_path / "cut")
    # Assert
    assert isinstance(cut, dict) and (cut["status"], cut["rounds"]) == ("interrupted", 2)
    assert resumed["status"] == "finished" and resumed["rounds"] == 4
    assert resumed["model_sha256"] == full["model_sha256"]
    assert read_accuracies(tmp_path / "cut") == read_accuracies(tmp_path / "full")
    assert not (tmp_path / "cut" / "state.npz").exists()


def read_accuracies(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x)["accuracy"] for x in lines]


@pytest.mark.slow
def test_sigint_mid_run_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    # Prepare: a run long enough to be interrupted after its second round
    args = ["simulate", "--plaintext", "--ledger", "none", "--peers", "5", "--rounds", "30",
            "--model", "logreg", "--seed", "4", "--local-epochs", "8"]
    proc = phalanx_process([*args, "--out", str(tmp_path / "cut")], tmp_path)
    assert proc.stdout is not None
    # Execute: Ctrl-C once the second round's progress line is out
    for line in proc.stdout:
        if line.startswith("round 2/30"):
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=300)
    # Assert: exit 130, status interrupted, every metrics line intact
    assert proc.returncode == 130, err
    summary = strict_json((tmp_path / "cut" / "summary.json").read_text())
    assert isinstance(summary, dict) and summary["status"] == "interrupted"
    rows = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert 2 <= len(rows) < 30 and all(strict_json(r) for r in rows)
    assert "--resume" in err
    # Execute: resume, and the same run uninterrupted
    result = CliRunner().invoke(app, ["simulate", "--resume", str(tmp_path / "cut"),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    full = sim_run.simulate(load_config(tmp_path / "cut" / "config.toml"), tmp_path / "full")
    # Assert: the same metrics and the same final model, bit for bit
    assert read_accuracies(tmp_path / "cut") == read_accuracies(tmp_path / "full")
    model = (tmp_path / "cut" / "model.npy").read_bytes()
    assert hashlib.sha256(model).hexdigest() == full["model_sha256"]


def test_dumps_finite_names_every_non_finite_value() -> None:
    assert dumps_finite({"x": float("inf")}) == '{"x": null, "non_finite": {"x": "inf"}}'
