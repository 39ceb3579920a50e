"""`phalanx peer init` / `network down` / `network up` input errors, and the RPC retry policy."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from phalanx.cli import app
from phalanx.errors import ChainError
from phalanx.node.config import load_peer_config
from phalanx.node.runner import Node


def run_cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_peer_init_makes_a_private_keystore_and_a_loadable_peer_toml(tmp_path: Path) -> None:
    (tmp_path / "task.toml").write_text("peers = 4\n")
    code, out = run_cli(["peer", "init", "--dir", str(tmp_path / "p"), "--contract",
                         "0x" + "12" * 20, "--task", str(tmp_path / "task.toml"),
                         "--partition", "2", "--listen", "127.0.0.1:6000"])
    assert code == 0, out
    for name in ("secp256k1.json", "x25519.json"):
        mode = stat.S_IMODE((tmp_path / "p" / "keystore" / name).stat().st_mode)
        assert mode == 0o600
    cfg = load_peer_config(tmp_path / "p" / "peer.toml")
    assert cfg.partition == 2 and cfg.listen == "127.0.0.1:6000"
    # a second init never overwrites it
    code, out = run_cli(["peer", "init", "--dir", str(tmp_path / "p")])
    assert code == 2 and "refusing to overwrite" in out


@pytest.mark.parametrize(("args", "named"), [
    (["network", "down", "/nonexistent/net"], "no readable network.json"),
    (["network", "up", "--peers", "6", "--committee", "4", "--voters", "1", "--out", "X"],
     "secure=false"),
    (["peer", "run", "--config", "/nonexistent/peer.toml"], "does not exist"),
    (["network", "up", "--secure", "--server-attack", "bogus", "--out", "X"],
     "server_attack='bogus' is unknown"),
    (["network", "up", "--secure", "--malformed-peers", "-1", "--out", "X"],
     "malformed_peers=-1 must be >= 0"),
])
def test_bad_input_is_one_error_line(tmp_path: Path, args: list[str], named: str) -> None:
    args = [a.replace("X", str(tmp_path / "out")) for a in args]
    code, out = run_cli(args)
    assert code == 2 and named in out and out.count("\n") == 1, out


def test_rpc_errors_are_retried_with_backoff_then_one_clear_error() -> None:
    calls: list[int] = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("node restarting")
        return 7

    fake = SimpleNamespace(cfg=SimpleNamespace(poll=0.001, rpc_retries=4,
                                               rpc_url="http://127.0.0.1:1"))
    assert Node.rpc(fake, flaky) == 7 and len(calls) == 3  # type: ignore[arg-type]

    def down() -> int:
        raise ConnectionError("refused")

    with pytest.raises(ChainError, match=r"rpc_url=http://127.0.0.1:1 failed 4 times"):
        Node.rpc(fake, down)  # type: ignore[arg-type]
