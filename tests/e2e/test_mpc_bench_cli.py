"""``phalanx bench mpc --json``: the last line is one JSON object with the documented fields."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from phalanx.cli import app


def test_bench_mpc_json_last_line() -> None:
    result = CliRunner().invoke(app, ["bench", "mpc", "--rule", "fltrust", "--clients", "3",
                                      "--dim", "2000", "--committee", "4", "--threshold", "1",
                                      "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    for key in ("plaintext_s", "client_s", "server_s", "total_s", "upload_bytes_per_client",
                "peak_rss_mb", "max_abs_error"):
        assert key in out
    assert set(out["client_s"]) == {"prepare", "witness", "share", "seal"}
    assert len(out["server_s"]) == 4
    assert out["max_abs_error"] <= out["error_bound"]
    assert out["accepted"] == out["accepted_plaintext"] == 3
