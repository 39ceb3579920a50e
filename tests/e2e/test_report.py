"""report.html (run and grid) holds every plot and the summary; the end-of-run summary lines;
own data and model from the CLI; experiment seeds and parameters; the capture warning."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from phalanx.cli import app
from phalanx.sim.report import RUN_PLOTS

FAST = ["--rounds", "2", "--model", "logreg", "--no-progress"]
#: the plaintext research mode (secure aggregation with the embedded ledger is the default)
PLAIN = ["--plaintext", "--ledger", "none"]


def invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_ledger_run_report_has_every_plot_and_the_summary(tmp_path: Path) -> None:
    # Prepare / Execute: a short chained run (the pure-Python ledger mirror)
    out = tmp_path / "run"
    output = invoke(["simulate", *FAST, "--plaintext", "--peers", "12", "--ledger", "model",
                     "--malformed-peers", "1", "--out", str(out)])
    # Assert: the printed summary
    for fragment in ("status: finished", "malicious peers:", "proposers", "rejected inputs:",
                     "servers identified", "slashed (* malicious):", "rewarded:",
                     "stake after round 2"):
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
        invoke(["simulate", *FAST, *PLAIN, "--peers", "4", "--dataset",
                f"npz:{tmp_path / 'd.npz'}",
                "--model", "my_models:tiny", "--out", str(out)])
    finally:
        sys.path.remove(str(tmp_path))
    # Assert: the model is 36*3 + 3 parameters
    assert np.load(out / "model.npy").shape == (111,)


def test_secure_run_warns_of_committee_capture(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", *FAST, "--rounds", "1", "--peers", "10",
                                      "--malicious", "0.3", "--secure", "--ledger", "none",
                                      "--out",
                                      str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    warning = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "committee=5" in warning[0] and "--committee" in warning[0]


def write_synthetic_run(run_dir: Path, *, stakes_as_list: bool) -> None:
    """A two-round secure ledger run as the per-peer simulator will write it: per-peer stakes
    and proposer ids in extra.ledger, a tampering server named, a faulty client rejected and
    slashed, an abort in round 2."""
    run_dir.mkdir()
    (run_dir / "config.toml").write_text('rule = "fltrust"\nsecure = true\nledger = "model"\n')
    (run_dir / "summary.json").write_text(json.dumps(
        {"status": "finished", "rounds_planned": 2, "final_accuracy": 0.5,
         "best_accuracy": 0.6, "malicious_peers": [3, 7]}))
    stakes = [{"0": 10.0, "3": 8.0, "5": 10.5, "7": 10.0},
              {"0": 10.2, "3": 8.0, "5": 10.5, "7": 9.0}]
    rows = []
    for rnd in (1, 2):
        per_peer: object = stakes[rnd - 1]
        if stakes_as_list:
            per_peer = [stakes[rnd - 1].get(str(p), 10.0) for p in range(8)]
        ledger = {"committee": [5, 7, 1, 2, 4], "voters": [6, 0], "proposers": [0, 3, 5],
                  "ballots": {"0": True, "6": rnd == 1}, "stands": True, "accepted": rnd == 1,
                  "slashed": [[3, "client", 2.0]] if rnd == 1 else [[7, "server", 1.0]],
                  "rewarded_ether": 1.5, "honest_stake_ether": 30.5 + rnd,
                  "malicious_stake_ether": 18.0 - rnd, "pool_ether": 90.0 - rnd,
                  "stakes": per_peer}
        extra = {"cheating_servers": [1] if rnd == 1 else [],
                 "aborted": None if rnd == 1 else "committee-abort: checks opening: cannot "
                 "say whose", "dropped_servers": [], "server_evidence":
                 {"1": "sent a share off the degree-2 codeword"} if rnd == 1 else {},
                 "protocol_violations": [{"client": 5, "reason": "duplicate", "detail": "x"}],
                 "adversaries": {"server_attack": "tamper", "corrupt_servers": [1],
                                 "client_fault": "wrong-trust-weight", "faulty_clients": [3]},
                 "ledger": ledger}
        rows.append({"round": rnd, "accuracy": 0.5 + 0.1 * (rnd == 1), "loss": 1.0,
                     "attack_success_rate": None, "seconds": {"train": 1.0},
                     "proposers": 3, "malicious_proposers": 1, "accepted": 2,
                     "malicious_accepted": 0,
                     "rejected": [{"peer": 3, "reason": "trust-weight", "detail": "check"}],
                     "revealed": {"trust_weight_sum": 1.7}, "extra": extra})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("stakes_as_list", [False, True])
def test_report_shows_the_ledger_committee_and_adversaries_per_round(
        tmp_path: Path, stakes_as_list: bool) -> None:
    # Prepare
    from phalanx.sim.report import describe_run, render_run_report

    run_dir = tmp_path / "run"
    write_synthetic_run(run_dir, stakes_as_list=stakes_as_list)
    # Execute
    page = render_run_report(run_dir)
    lines = describe_run(run_dir)
    # Assert: the ledger per round (malicious peers starred)
    ledger = page[page.index("id='ledger'"):page.index("id='stakes'")]
    assert "<td>0 3* 5</td>" in ledger  # proposer ids
    assert "<td>5 7* 1 2 4</td>" in ledger  # committee
    assert "0:yes 6:yes" in ledger and "0:yes 6:no" in ledger  # ballots
    assert "3* client 2.00" in ledger and "7* server 1.00" in ledger  # slashes
    assert "<td>88.0000</td>" in ledger  # pool after round 2
    # Assert: the stakes table (first and last round)
    stakes = page[page.index("id='stakes'"):page.index("id='committee'")]
    assert "<td>7*</td><td>10.0000</td><td>9.0000</td>" in stakes
    # Assert: the committee's findings per round
    committee = page[page.index("id='committee'"):]
    assert "tamper: 1→7*" in committee and "<td>1→7*</td>" in committee  # seat 1 is peer 7
    assert "sent a share off the degree-2 codeword" in committee
    assert "committee-abort: checks opening: cannot say whose" in committee
    assert "wrong-trust-weight: 3" in committee and "3*: trust-weight" in committee
    assert "5: duplicate" in committee
    # Assert: the summary lines say the same
    text = "\n".join(lines)
    assert "server attack tamper: 2 corrupt seat(s) over 2 round(s); identified 1" in text
    assert "client fault wrong-trust-weight: faulty peers [3]; rejected [3]" in text
    assert "abort, round 2: committee-abort" in text
    assert "refused uploads: round 1 peer 5 (duplicate)" in text
    assert "  round 1: 0 3* 5" in text  # proposers by id
    assert "servers identified as cheating: peers 7*" in text  # seat 1 of round 1's committee
    assert "peer 3* (client) ×1, 2.00 ETH" in text
    # stakes per peer recorded: rewards split honest / malicious, stakes from registration
    # (10 ETH each): honest 0, 5 end at 10.2 + 10.5, malicious 3 at 8.0 (+2 slashed), 7 at 9.0
    # (+1 slashed); peers 1, 2, 4, 6 (list form) stay at 10
    assert "stake, start → after round 2: honest" in text
    if not stakes_as_list:
        assert "(honest peers 0.70 ETH, malicious peers 0.00 ETH)" in text
        assert "honest 20.00 → 32.50 ETH, malicious 20.00 → 16.00 ETH" in text


def test_the_stake_plot_draws_one_line_per_peer(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from phalanx.sim.report import draw_stake, load_run

    write_synthetic_run(tmp_path / "run", stakes_as_list=False)
    _, rows, _ = load_run(tmp_path / "run")
    fig, ax = plt.subplots()
    try:
        draw_stake(rows, {3, 7})(ax)
        drawn = [line for line in ax.get_lines() if len(line.get_xdata())]
        colors = sorted(str(line.get_color()) for line in drawn)
        assert len(drawn) == 4 and colors == ["tab:blue"] * 2 + ["tab:red"] * 2
        assert [list(line.get_ydata()) for line in drawn][3] == [10.0, 9.0]  # peer 7
    finally:
        plt.close(fig)
