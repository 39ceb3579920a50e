"""Protocol-level adversaries in short simulated runs, each with its exact outcome (§3.2, §3.4).

Committee members (``--server-attack``): a tampering server is named and the round keeps the
honest output at m ≥ 4t + 1; at m = 3t + 1 the round aborts and says why nobody can be named; a
silent server is an erasure; a false claim names the claimant. Malicious proposers
(``--client-fault``) are rejected by the MPC with the name of the check that caught them, and
slashed on chain in a ledger run. Bad combinations are one-line errors.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from phalanx.cli import app
from phalanx.sim.config import SimConfig
from phalanx.sim.federation import build_federation
from phalanx.sim.run import make_round_player
from phalanx.sim.rundir import dumps_finite

# reproducible secrets: an attacked run can be compared bit for bit with the honest one
# (without a ledger unless a test sets one: the embedded ledger is the default)
BASE: dict[str, Any] = dict(peers=6, rounds=1, model="logreg", local_epochs=1, secure=True,
                            reproducible_secrets=True, seed=3, ledger="none")
FAST = ["--ledger", "none", "--peers", "6", "--rounds", "1", "--model", "logreg",
        "--local-epochs", "1", "--no-progress"]


def run(tmp_path: Path, name: str, **kw: Any) -> tuple[dict[str, Any], np.ndarray]:
    """The single round's metrics row (as metrics.jsonl holds it) and the model after it.

    The round is played in process without the run directory's plots (``simulate`` writes
    the same row: tests/e2e/test_simulate_secure.py); ``name`` labels the run.
    """
    play = make_round_player(SimConfig(**{**BASE, **kw}))
    row = json.loads(dumps_finite(dataclasses.asdict(play(1))))
    return row, play.fed.global_params.copy()


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> dict[int, np.ndarray]:
    """The honest run's model at committee sizes 5 and 9 (t = 1 and 2)."""
    tmp = tmp_path_factory.mktemp("honest")
    return {5: run(tmp, "m5")[1], 9: run(tmp, "m9", committee=9, threshold=2)[1]}


# where the tampering is caught: (5, 1) zero-shares by CDI PRZS, so in the checks opening's
# codeword; (9, 2) by dealt zero sharings (mpc/dealt.py choose_scheme), whose own check
# opening comes first
@pytest.mark.parametrize(("m", "t", "k", "caught"), [
    (5, 1, 1, "codeword in the checks opening"),
    (9, 2, 2, "dealt zero sharing 'checks': sent a check value")])
def test_tampering_servers_are_named_at_4t_plus_1_and_the_round_stands(
        tmp_path: Path, honest: dict[int, np.ndarray], m: int, t: int, k: int,
        caught: str) -> None:
    # Execute
    row, model = run(tmp_path, "tamper", server_attack="tamper", corrupt_servers=k,
                     committee=m, threshold=t)
    # Assert: exactly the corrupt members are named, with evidence; nothing else changes
    extra = row["extra"]
    corrupt = extra["adversaries"]["corrupt_servers"]
    assert len(corrupt) == k and extra["adversaries"]["server_attack"] == "tamper"
    assert extra["cheating_servers"] == corrupt
    assert sorted(int(j) for j in extra["server_evidence"]) == corrupt
    assert all(caught in why for why in extra["server_evidence"].values())
    assert extra["aborted"] is None and row["accepted"] == 6 and row["rejected"] == []
    assert np.array_equal(model, honest[m])


def test_a_tampering_server_at_3t_plus_1_aborts_the_round_and_says_why(tmp_path: Path) -> None:
    # Prepare: the model before any round
    initial = build_federation(SimConfig(**{**BASE, "committee": 4})).global_params
    # Execute
    row, model = run(tmp_path, "tamper4", server_attack="tamper", committee=4)
    # Assert: detected, nobody named (every 2t+1 of 4 shares fit a polynomial), model unmoved
    extra = row["extra"]
    assert extra["cheating_servers"] == [] and extra["server_evidence"] == {}
    assert extra["aborted"].startswith("committee-abort: checks opening")
    assert "cannot say whose" in extra["aborted"] and "m >= 4t + 1" in extra["aborted"]
    assert row["accepted"] == 0
    assert np.array_equal(model, initial)


def test_silent_servers_are_erasures(tmp_path: Path, honest: dict[int, np.ndarray]) -> None:
    row, model = run(tmp_path, "silent", server_attack="silent", corrupt_servers=2)
    extra = row["extra"]
    assert extra["dropped_servers"] == extra["adversaries"]["corrupt_servers"]
    assert len(extra["dropped_servers"]) == 2
    assert extra["aborted"] is None and extra["cheating_servers"] == []
    assert np.array_equal(model, honest[5])
    # three of five silent leave 2 < 2t + 1 shares of the degree-2t checks: the round aborts
    row, _ = run(tmp_path, "silent3", server_attack="silent", corrupt_servers=3)
    assert row["extra"]["aborted"].startswith("committee-abort") and row["accepted"] == 0


@pytest.mark.parametrize("m", [4, 5])
def test_a_false_claim_names_the_claimant(tmp_path: Path, honest: dict[int, np.ndarray],
                                          m: int) -> None:
    row, model = run(tmp_path, "claim", server_attack="false-claim", committee=m)
    extra = row["extra"]
    (claimant,) = extra["adversaries"]["corrupt_servers"]
    assert extra["cheating_servers"] == [claimant]
    assert "false claim" in extra["server_evidence"][str(claimant)]
    assert extra["aborted"] is None and row["accepted"] == 6
    if m == 5:
        assert np.array_equal(model, honest[5])


@pytest.mark.parametrize(("fault", "reason"), [
    ("wrong-trust-weight", "trust-weight"),
    ("bad-remainder", "remainder"),
    ("non-binary-bits", "not-binary"),
    ("inconsistent-sharing", "inconsistent-sharing"),
    ("wrap-around", "projection"),
    ("uncommitted-bundle", "bad-bundle"),
    ("garbage-bundle", "bad-bundle"),
    ("short-vector", "bad-bundle"),
])
def test_a_faulty_client_is_rejected_with_the_checks_name(tmp_path: Path, fault: str,
                                                          reason: str) -> None:
    # Execute: two of the two malicious proposers cheat inside the MPC
    row, _ = run(tmp_path, "client", client_fault=fault, malicious=0.34, faulty_clients=2,
                 attack="none")
    # Assert: exactly they are rejected, by the check's name; every honest input counts
    faulty = row["extra"]["adversaries"]["faulty_clients"]
    assert len(faulty) == 2 and row["extra"]["adversaries"]["client_fault"] == fault
    assert [(r["peer"], r["reason"]) for r in row["rejected"]] == [(p, reason) for p in faulty]
    assert row["accepted"] == 4 and row["malicious_accepted"] == 0
    assert row["extra"]["aborted"] is None and row["extra"]["cheating_servers"] == []


def test_a_part1_resent_after_the_coin_is_refused_by_name(tmp_path: Path,
                                                          honest: dict[int, np.ndarray]) -> None:
    row, _ = run(tmp_path, "resend", client_fault="resend-part1")
    (faulty,) = row["extra"]["adversaries"]["faulty_clients"]
    refused = row["extra"]["protocol_violations"]
    assert {(v["client"], v["reason"]) for v in refused} == {(faulty, "duplicate")}
    assert row["rejected"] == [] and row["accepted"] == 6  # the committed upload stands


def test_a_faulty_client_is_slashed_on_chain(tmp_path: Path) -> None:
    # honest voters: evidence slashes stand only with an accepted result (docs/ledger.md)
    row, _ = run(tmp_path, "ledger", client_fault="wrong-trust-weight", peers=12,
                 malicious=0.34, faulty_clients=2, ledger="model", voters=2, seed=0,
                 voting_attack=False)
    faulty = row["extra"]["adversaries"]["faulty_clients"]
    assert faulty and [(r["peer"], r["reason"]) for r in row["rejected"]] == [
        (p, "trust-weight") for p in faulty]
    slashed = {(p, why) for p, why, _ in row["extra"]["ledger"]["slashed"]}
    assert {(p, "client") for p in faulty} <= slashed


def test_the_cli_warns_at_3t_plus_1_and_the_summary_names_servers(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", *FAST, "--secure", "--server-attack",
                                      "tamper", "--committee", "4", "--out",
                                      str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "an identified abort is impossible at m = 3t+1" in result.output
    assert "committee aborted 1 round(s)" in result.output
    result = CliRunner().invoke(app, ["simulate", *FAST, "--secure", "--server-attack",
                                      "tamper", "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    corrupt = json.loads((tmp_path / "b" / "metrics.jsonl").read_text())["extra"][
        "adversaries"]["corrupt_servers"]
    assert f"servers identified as cheating: {corrupt}" in result.output


@pytest.mark.parametrize(("args", "fragments"), [
    (["--plaintext", "--server-attack", "tamper"], ["server_attack='tamper'", "--secure"]),
    (["--plaintext", "--client-fault", "wrap-around"], ["client_fault='wrap-around'",
                                                        "--secure"]),
    (["--secure", "--server-attack", "bribe"], ["server_attack='bribe'", "tamper"]),
    (["--secure", "--client-fault", "lie"], ["client_fault='lie'", "wrap-around"]),
    (["--secure", "--corrupt-servers", "2"], ["corrupt_servers=2", "--server-attack"]),
    (["--secure", "--faulty-clients", "1"], ["faulty_clients=1", "--client-fault"]),
    (["--secure", "--server-attack", "tamper", "--corrupt-servers", "6"],
     ["corrupt_servers=6", "committee=5"]),
    (["--secure", "--server-attack", "silent", "--corrupt-servers", "0"],
     ["corrupt_servers=0", ">= 1"]),
    (["--secure", "--client-fault", "wrong-trust-weight", "--faulty-clients", "2"],
     ["faulty_clients=2", "gives 1"]),
    (["--secure", "--client-fault", "wrong-trust-weight", "--malicious", "0"],
     ["faulty_clients=1", "gives 0"]),
    (["--secure", "--client-fault", "bad-remainder", "--rule", "cc"],
     ["client_fault='bad-remainder'", "rule='cc'", "fltrust"]),
    (["--secure", "--client-fault", "wrap-around", "--rule", "rsa"],
     ["client_fault='wrap-around'", "rule='rsa'"]),
])
def test_bad_adversary_options_are_one_line_errors(tmp_path: Path, args: list[str],
                                                   fragments: list[str]) -> None:
    result = CliRunner().invoke(app, ["simulate", *FAST, *args, "--out", str(tmp_path / "o")])
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.mark.parametrize("attack", ["tamper", "false-claim", "silent"])
def test_server_attacks_in_the_per_peer_ledger_run_have_their_exact_outcome(
        tmp_path: Path, attack: str) -> None:
    # Execute: one corrupt member per round, each peer its own state machine, on the EVM
    row, _ = run(tmp_path, attack, server_attack=attack, peers=12, voters=2,
                 ledger="embedded", malicious=0.0, attack="none")
    # Assert: tampering and false claims are named and slashed as a server; a silent member
    # is only an erasure; in every case every client is accepted and the result stands
    extra = row["extra"]
    corrupt = extra["adversaries"]["corrupt_servers"]
    assert extra["adversaries"]["server_attack"] == attack and len(corrupt) == 1
    ledger = extra["ledger"]
    seat_peer = ledger["committee"][corrupt[0]]
    slashed = {(p, why) for p, why, _ in ledger["slashed"]}
    if attack == "silent":
        assert extra["cheating_servers"] == [] and (seat_peer, "server") not in slashed
    else:
        assert extra["cheating_servers"] == corrupt and (seat_peer, "server") in slashed
    assert row["accepted"] == row["proposers"] and row["rejected"] == []
    assert ledger["stands"] and extra["aborted"] is None


@pytest.mark.parametrize(("fault", "reason"), [
    ("wrong-trust-weight", "trust-weight"),
    ("non-binary-bits", "not-binary"),
    ("inconsistent-sharing", "inconsistent-sharing"),
    ("wrap-around", "projection"),
    ("garbage-bundle", "bad-bundle"),
    ("short-vector", "bad-bundle"),
])
def test_client_faults_in_the_per_peer_ledger_run_are_rejected_by_name_and_slashed(
        tmp_path: Path, fault: str, reason: str) -> None:
    # Execute: the malicious proposers cheat inside the MPC with their own messages
    row, _ = run(tmp_path, fault, client_fault=fault, faulty_clients=2, peers=12, voters=2,
                 malicious=0.34, attack="none", ledger="embedded", seed=0,
                 voting_attack=False)
    # Assert: exactly they are rejected with the check's name and slashed as clients; no
    # member is blamed, every honest input counts
    extra = row["extra"]
    faulty = extra["adversaries"]["faulty_clients"]
    assert faulty and extra["adversaries"]["client_fault"] == fault
    assert sorted((r["peer"], r["reason"]) for r in row["rejected"]) == [
        (p, reason) for p in faulty]
    assert row["accepted"] == row["proposers"] - len(faulty)
    assert extra["cheating_servers"] == [] and extra["aborted"] is None
    slashed = {(p, why) for p, why, _ in extra["ledger"]["slashed"]}
    assert {(p, "client") for p in faulty} <= slashed


def test_a_part1_resent_after_the_coin_is_refused_by_every_member_in_the_peer_run(
        tmp_path: Path) -> None:
    row, _ = run(tmp_path, "resend", client_fault="resend-part1", peers=12, voters=2,
                 malicious=0.34, faulty_clients=1, attack="none", ledger="embedded", seed=0,
                 voting_attack=False)
    (faulty,) = row["extra"]["adversaries"]["faulty_clients"]
    refused = row["extra"]["refused_messages"]
    # every member refuses it (part 1 is closed: "part 1 while collecting part 2"), named
    assert len(refused) == 5 and {r["reason"] for r in refused} == {"wrong-phase"}
    assert len({r["from"] for r in refused}) == 1
    assert row["rejected"] == [] and row["accepted"] == row["proposers"]


def test_an_uncommitted_bundle_is_refused_on_arrival_and_no_member_is_blamed(
        tmp_path: Path) -> None:
    # Execute: a malicious proposer sends one member an envelope other than the committed one
    row, _ = run(tmp_path, "uncommitted", client_fault="uncommitted-bundle", peers=12,
                 voters=2, malicious=0.34, faulty_clients=1, attack="none", ledger="embedded",
                 seed=0, voting_attack=False)
    # Assert: that member refuses it and names the client (its signature is on both), holds
    # nothing of it (an erasure): the client's committed input still counts, nobody is blamed
    extra = row["extra"]
    (faulty,) = extra["adversaries"]["faulty_clients"]
    refused = extra["refused_messages"]
    assert [(r["reason"], "not the one committed" in r["detail"]) for r in refused] == [
        ("hash-mismatch", True)]
    assert extra["cheating_servers"] == [] and row["rejected"] == []
    assert extra["ledger"]["stands"] and extra["aborted"] is None


def test_a_per_peer_ledger_run_at_9_2_re_randomizes_with_dealt_zero_sharings(
        tmp_path: Path) -> None:
    # Execute: (9, 2), where choose_scheme picks dealt: the members deal each other signed
    # ZERO_DEAL messages, no PRZS key
    from phalanx.mpc.dealt import choose_scheme

    assert choose_scheme(9, 2) == "dealt"
    row, _ = run(tmp_path, "dealt", committee=9, threshold=2, peers=16, voters=2,
                 ledger="embedded", malicious=0.0, attack="none")
    # Assert: every client is accepted, the round stands, nobody is named
    extra = row["extra"]
    assert row["accepted"] == row["proposers"] and row["rejected"] == []
    assert extra["ledger"]["stands"] and extra["aborted"] is None
    assert extra["cheating_servers"] == []
