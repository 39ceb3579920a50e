"""Committee sizing (protocol.md §3.5): exact tails vs hand-computed values, input checks, CLI."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
import typer
from typer.testing import CliRunner

from phalanx.cli.committee import format_probability, register
from phalanx.errors import ConfigError
from phalanx.mpc.committee_size import (
    Binomial,
    Hypergeometric,
    Kind,
    compute_binomial_tail,
    compute_committee_size,
    compute_corrupt_peers,
    compute_hypergeometric_tail,
    compute_sizing_table,
    compute_tail,
    find_smallest_safe,
    to_fraction,
)

TENTH = Fraction(1, 10)
MICRO = Fraction(1, 10**6)


# --- exact tails, hand-computed -------------------------------------------------------------


def test_binomial_tail_m4_t1_tenth() -> None:
    # 1 - 0.9^4 - 4 * 0.1 * 0.9^3 = 1 - 0.6561 - 0.2916
    assert compute_binomial_tail(4, 1, TENTH) == Fraction(523, 10000)


def test_binomial_tail_m5_t1_tenth() -> None:
    # 1 - 0.9^5 - 5 * 0.1 * 0.9^4 = 1 - 0.59049 - 0.32805
    assert compute_binomial_tail(5, 1, TENTH) == Fraction(8146, 100000)


def test_binomial_tail_fair_coin() -> None:
    # P[Bin(7, 1/2) > 2] = 1 - (C(7,0) + C(7,1) + C(7,2)) / 2^7
    assert compute_binomial_tail(7, 2, Fraction(1, 2)) == Fraction(128 - 1 - 7 - 21, 128)


def test_binomial_tail_upper_side_path() -> None:
    # t >= m - t sums the upper side: P[Bin(4, 1/3) > 2] = 4 (1/3)^3 (2/3) + (1/3)^4 = 9/81
    assert compute_binomial_tail(4, 2, Fraction(1, 3)) == Fraction(1, 9)
    assert compute_binomial_tail(4, 3, Fraction(1, 3)) == Fraction(1, 81)


def test_binomial_tail_edges() -> None:
    assert compute_binomial_tail(10, 10, Fraction(1, 2)) == 0  # t >= m: never more than m
    assert compute_binomial_tail(10, 0, Fraction(0)) == 0  # nobody corrupt
    assert compute_binomial_tail(1, 0, Fraction(1, 4)) == Fraction(1, 4)


def test_hypergeometric_tail_small_population() -> None:
    # N=10, K=3, m=4: P[X >= 2] = (C(3,2) C(7,2) + C(3,3) C(7,1)) / C(10,4) = (63 + 7) / 210
    assert compute_hypergeometric_tail(4, 1, 10, 3) == Fraction(1, 3)


def test_hypergeometric_tail_hundred_peers() -> None:
    # N=100, K=10, m=4: 1 - (C(90,4) + 10 C(90,3)) / C(100,4) = 1 - 3729990 / 3921225
    assert compute_hypergeometric_tail(4, 1, 100, 10) == Fraction(191235, 3921225)


def test_hypergeometric_tail_certain_and_impossible() -> None:
    # Prepare: K <= t can never exceed t; with N - K = 2 honest, 5 seats hold >= 3 corrupt
    # Execute / Assert
    assert compute_hypergeometric_tail(7, 2, 50, 2) == 0
    assert compute_hypergeometric_tail(5, 2, 10, 8) == 1


def test_corrupt_peers_round_down() -> None:
    assert compute_corrupt_peers(105, TENTH) == 10
    assert compute_corrupt_peers(100, TENTH) == 10
    assert compute_corrupt_peers(9, TENTH) == 0


def test_committee_sizes() -> None:
    assert compute_committee_size(1, Kind.DETECT) == 4
    assert compute_committee_size(5, Kind.IDENTIFY) == 21


def test_to_fraction_reads_decimals_exactly() -> None:
    assert to_fraction(0.1, "corrupt") == TENTH
    assert to_fraction("1e-6", "failure") == MICRO
    assert to_fraction("1/3", "corrupt") == Fraction(1, 3)


# --- the table and the search ---------------------------------------------------------------


def test_smallest_safe_binomial_tenth_micro() -> None:
    # Prepare
    model = Binomial(TENTH)
    # Execute
    detect = find_smallest_safe(model, kind=Kind.DETECT, failure=MICRO)
    identify = find_smallest_safe(model, kind=Kind.IDENTIFY, failure=MICRO)
    # Assert: the first safe t, and the one before it is not safe
    assert detect is not None and (detect.t, detect.m) == (18, 55)
    assert identify is not None and (identify.t, identify.m) == (30, 121)
    assert compute_tail(model, m=52, t=17) >= MICRO > detect.tail
    assert compute_tail(model, m=117, t=29) >= MICRO > identify.tail


def test_table_rows_and_marks() -> None:
    # Execute
    table = compute_sizing_table(Binomial(TENTH), failure=Fraction(1, 100), max_t=4)
    # Assert
    assert [r.t for r in table.rows] == [1, 2, 3, 4]
    first = table.rows[0]
    assert first.detect is not None and first.identify is not None
    assert (first.detect.m, first.detect.safe) == (4, False)
    assert first.detect.tail == Fraction(523, 10000)
    assert first.identify.m == 5
    safe_detect = [r.t for r in table.rows if r.detect is not None and r.detect.safe]
    assert safe_detect == [4]  # 0.00646 at m = 13
    assert table.smallest_detect is not None and table.smallest_detect.t == 4


def test_table_marks_committees_larger_than_population() -> None:
    table = compute_sizing_table(Hypergeometric(12, 1), failure=MICRO, max_t=4)
    # 4t+1 = 13 > 12 peers at t = 3; 3t+1 = 13 > 12 at t = 4
    assert table.rows[2].identify is None and table.rows[2].detect is not None
    assert table.rows[3].detect is None
    # one corrupt peer: t = 1 is already safe (tail exactly 0)
    assert table.smallest_detect is not None and table.smallest_detect.tail == 0


def test_no_safe_committee_above_one_third() -> None:
    assert find_smallest_safe(Binomial(Fraction(2, 5)), kind=Kind.DETECT, failure=MICRO) is None


# --- input validation -----------------------------------------------------------------------


@pytest.mark.parametrize("corrupt", [Fraction(1), Fraction(-1, 10), Fraction(3, 2)])
def test_corrupt_fraction_out_of_range(corrupt: Fraction) -> None:
    with pytest.raises(ConfigError, match="corrupt="):
        Binomial(corrupt)


@pytest.mark.parametrize("failure", [Fraction(0), Fraction(1), Fraction(2)])
def test_failure_out_of_range(failure: Fraction) -> None:
    with pytest.raises(ConfigError, match="failure="):
        compute_sizing_table(Binomial(TENTH), failure=failure)


def test_committee_larger_than_population() -> None:
    with pytest.raises(ConfigError, match="m=7 needs peers N=6"):
        compute_hypergeometric_tail(7, 2, 6, 1)


def test_bad_counts() -> None:
    with pytest.raises(ConfigError, match="corrupt_peers K=11"):
        Hypergeometric(10, 11)
    with pytest.raises(ConfigError, match="threshold t=-1"):
        compute_binomial_tail(4, -1, TENTH)
    with pytest.raises(ConfigError, match="max_t=0"):
        compute_sizing_table(Binomial(TENTH), failure=MICRO, max_t=0)


@pytest.mark.parametrize("text", ["abc", "nan", "inf", "1/0"])
def test_to_fraction_rejects_non_numbers(text: str) -> None:
    with pytest.raises(ConfigError, match="corrupt="):
        to_fraction(text, "corrupt")


# --- CLI --------------------------------------------------------------------------------------


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _group() -> None:
        """Force typer's group mode, as in the real app."""

    register(app)
    return app


def test_cli_table() -> None:
    result = CliRunner().invoke(make_app(), ["committee", "--max-t", "3"])
    assert result.exit_code == 0, result.output
    assert "0.052300 ✗" in result.output
    assert "t=18, m=55" in result.output and "t=30, m=121" in result.output


def test_cli_json_with_peers() -> None:
    # Execute
    result = CliRunner().invoke(
        make_app(), ["committee", "--corrupt", "0.1", "--peers", "100", "--max-t", "2", "--json"]
    )
    # Assert
    assert result.exit_code == 0, result.output
    binomial, hyper = (json.loads(line) for line in result.output.strip().splitlines())
    assert binomial["model"] == "binomial" and hyper["model"] == "hypergeometric"
    assert hyper["corrupt_peers"] == 10
    assert hyper["rows"][0]["detect"]["tail"] == pytest.approx(191235 / 3921225)
    assert binomial["smallest_detect"]["m"] == 55


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--corrupt", "1"], "corrupt=1 must lie in [0, 1)"),
        (["--failure", "0"], "failure=0 must lie in (0, 1)"),
        (["--peers", "3"], "peers N=3"),
        (["--corrupt", "x"], "corrupt='x'"),
    ],
)
def test_cli_rejects_bad_input(args: list[str], message: str) -> None:
    result = CliRunner().invoke(make_app(), ["committee", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_format_probability_below_float_range() -> None:
    assert format_probability(Fraction(1, 10**400)) == "1.00e-400"
    assert format_probability(Fraction(523, 10000)) == "0.052300"
    assert format_probability(Fraction(0)) == "0"
    assert format_probability(Fraction(9999, 10**10)) == "1.00e-06"


# -- predicted cost beside each recommended committee (issue 13) --------------------------------

MEASURED_FLTRUST_1E5 = {(5, 1): 0.30, (13, 4): 0.475, (31, 10): 0.71}
"""Per-server CPU s, fltrust n = 100, d = 10^5 (benchmarks/committee_scale.py; the fit's data)."""


def test_predicted_cost_fits_the_measured_points_and_grows_polynomially() -> None:
    from phalanx.mpc.committee_cost import predict_cost

    for (m, t), measured in MEASURED_FLTRUST_1E5.items():
        got = predict_cost(m, t, clients=100, dim=100_000, max_committee=128)
        assert 0.5 * measured < got.server_s < 1.5 * measured
    big = predict_cost(64, 21, clients=100, dim=100_000, max_committee=128)
    assert big.zero == "dealt" and big.runnable and big.per_peer_ok  # ZERO_DEAL, no keys
    assert big.server_s < 20 * predict_cost(5, 1, clients=100, dim=100_000,
                                            max_committee=128).server_s
    assert big.upload_bytes == 43 * ((61 * 100_000 + 63) // 64) * 8
    assert not predict_cost(129, 42, clients=1, dim=1, max_committee=128).contract_ok
    with pytest.raises(ConfigError, match="dim=0"):
        predict_cost(5, 1, clients=1, dim=0, max_committee=128)


def test_cli_prints_the_predicted_cost_and_refuses_committees_above_the_contract_cap() -> None:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    out = runner.invoke(app, ["committee", "--corrupt", "0.1", "--failure", "1e-6"]).output
    assert "predicted at n=100, d=100000: per-server CPU" in out and "dealt" in out
    assert "in-process engine only" not in out  # the per-peer path deals zero sharings
    out = runner.invoke(app, ["committee", "--corrupt", "0.2", "--failure", "1e-9"]).output
    assert "not recommended" in out and "MAX_COMMITTEE=128" in out
    got = json.loads(runner.invoke(app, ["committee", "--json"]).output.splitlines()[0])
    assert got["cost_detect"]["recommended"] and got["cost_detect"]["zero"] == "dealt"
    bad = runner.invoke(app, ["committee", "--dim", "0"])
    assert bad.exit_code == 2 and "dim=0" in bad.output
