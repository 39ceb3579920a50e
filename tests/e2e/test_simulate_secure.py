"""The simulator under the committee MPC: same model trajectory as the plaintext backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phalanx.sim.config import SimConfig
from phalanx.sim.run import simulate

# plaintext without a ledger; each test turns secure on where it compares
BASE = dict(peers=8, malicious=0.25, rounds=2, model="logreg", seed=5, malformed_peers=3,
            secure=False, ledger="none")


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("rule", "attack"), [("fltrust", "sign-flip"), ("cc", "scaling")])
def test_secure_run_follows_the_plaintext_run(tmp_path: Path, rule: str, attack: str) -> None:
    # Execute: one federation, aggregated in plaintext and under MPC (m=5, t=1)
    cfg = SimConfig(rule=rule, attack=attack, **BASE)
    plain = simulate(cfg, tmp_path / "plain")
    secure = simulate(cfg.replace(secure=True), tmp_path / "secure")
    # Assert: same accepted and rejected peers, accuracy within the fixed-point noise
    assert abs(plain["final_accuracy"] - secure["final_accuracy"]) <= 0.02
    for p, s in zip(rows(tmp_path / "plain"), rows(tmp_path / "secure"), strict=True):
        assert p["accepted"] == s["accepted"]
        assert p["rejected"] == s["rejected"]
        assert s["extra"]["cheating_servers"] == [] and s["extra"]["aborted"] is None
        assert s["extra"]["server_evidence"] == {} and s["extra"]["protocol_violations"] == []
        assert s["extra"]["reproducible_secrets"] is False  # the OS's, by default
        assert s["extra"]["frac_bits"] == 16
        assert {r["reason"] for r in s["rejected"]} == {"non-finite", "wrong-length"}
        for key, value in p["revealed"].items():
            assert s["revealed"][key] == pytest.approx(value, rel=1e-3)
