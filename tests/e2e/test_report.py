"""report.html (run and grid) holds every plot and the summary; the end-of-run summary lines;
own data and model from the CLI; experiment seeds and parameters; the capture warning."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from phalanx.cli import app
from phalanx.sim.report import RUN_PLOTS

FAST = ["--rounds", "2", "--model", "logreg", "--no-progress"]


def invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_ledger_run_report_has_every_plot_and_the_summary(tmp_path: Path) -> None:
    # Prepare / Execute: a short chained run (the pure-Python ledger mirror)
    out = tmp_path / "run"
    output = invoke(["simulate", *FAST, "--peers", "12", "--ledger", "model",
                     "--malformed-peers", "1", "--out", str(out)])
    # Assert: the printed summary
    for fragment in ("status: finished", "malicious peers:", "proposers", "rejected inputs:",
                     "servers identified", "slashed:", "rewarded:", "stake after round 2"):
        assert fragment in output, output
    assert output.strip().splitlines()[-1].startswith("final_accuracy=")
    # Assert: one self-contained page with every plot inlined
    page = (out / "report.html").read_text()
    for plot_id, _ in RUN_PLOTS:
        assert re.search(rf"id='plot-{plot_id}'[^>]*src='data:image/png;base64,[A-Za-z0-9+/=]+'",
                         page), plot_id
    assert "id='summary'" in page and "id='config'" in page and "status: finished" in page
    assert "http://" not in page and "https://" not in page
    # Execute / Assert: `phalanx report` rewrites it from the files alone
    (out / "report.html").unlink()
    assert "report:" in invoke(["report", str(out)]) and (out / "report.html").is_file()


def test_experiment_seeds_give_mean_and_std_and_keep_rule_params(tmp_path: Path) -> None:
    # Prepare: a base config whose rule_params only cc reads
    (tmp_path / "base.toml").write_text("peers = 5\n[rule_params]\ntau = 0.7\n")
    out = tmp_path / "grid"
    # Execute
    invoke(["experiment", "--config", str(tmp_path / "base.toml"), "--rules", "fedavg,cc",
            "--attacks", "none", "--seeds", "0,1", "--rounds", "1", "--model", "logreg",
            "--out", str(out)])
    # Assert
    cells = json.loads((out / "results.json").read_text())
    assert all(c["accuracy_std"] is not None and c["seeds"] == [0, 1] for c in cells)
    assert "±" in (out / "results.md").read_text()
    assert "tau = 0.7" in (out / "cc__none" / "s1" / "config.toml").read_text()
    assert "tau" not in (out / "fedavg__none" / "s0" / "config.toml").read_text()
    page = (out / "report.html").read_text()
    assert "id='plot-heatmap'" in page and "id='plot-curves-none'" in page


def test_own_npz_data_and_own_model(tmp_path: Path) -> None:
    # Prepare: a 3-class npz dataset and a model module on sys.path
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.random((300, 6, 6)).astype(np.float32),
             y_train=np.arange(300) % 3, x_test=rng.random((12, 6, 6)).astype(np.float32),
             y_test=np.arange(12) % 3)
    (tmp_path / "my_models.py").write_text(
        "import torch\n"
        "def tiny(shape, classes):\n"
        "    c, h, w = shape\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(c*h*w, classes))\n")
    sys.path.insert(0, str(tmp_path))
    try:
        # Execute
        out = tmp_path / "run"
        invoke(["simulate", *FAST, "--peers", "4", "--dataset", f"npz:{tmp_path / 'd.npz'}",
                "--model", "my_models:tiny", "--out", str(out)])
    finally:
        sys.path.remove(str(tmp_path))
    # Assert: the model is 36*3 + 3 parameters
    assert np.load(out / "model.npy").shape == (111,)


def test_secure_run_warns_of_committee_capture(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", *FAST, "--rounds", "1", "--peers", "10",
                                      "--malicious", "0.3", "--secure", "--out",
                                      str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    warning = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "committee=5" in warning[0] and "--committee" in warning[0]
