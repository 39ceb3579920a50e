"""``phalanx chain status`` on the embedded backend (a demo task played in-process)."""

from __future__ import annotations

from typer.testing import CliRunner

from phalanx.cli import app


def test_status_embedded_plays_demo_rounds():
    out = CliRunner().invoke(app, ["chain", "status", "--demo-rounds", "1", "--peers", "36"])
    assert out.exit_code == 0, out.output
    assert "round 0: stands=True accepted=True" in out.output
    assert "round 1 phase=BEACON" in out.output and "peers=36" in out.output
