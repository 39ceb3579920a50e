"""simulate --backend ray (issue 14, docs/scale.md): the same metrics as in-process, a worker's
failure as one line naming the peer and round, a local instance shut down on Ctrl-C, and a
one-line install hint without Ray. One local instance with 2 CPUs serves the module."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from phalanx.cli import app
from phalanx.errors import ConfigError, PhalanxError
from phalanx.sim.config import SimConfig
from phalanx.sim.run import make_round_player, read_metrics, read_summary, simulate

ray = pytest.importorskip("ray")

DIGITS = dict(peers=5, rounds=2, model="logreg", seed=4, malicious=0.2, local_epochs=1,
              secure=False, ledger="none")


def test_ctrl_c_shuts_the_local_instance_down(tmp_path: Path) -> None:
    # Prepare: no instance yet, so the run starts (and owns) one
    assert not ray.is_initialized()

    def interrupt(_: Any) -> None:
        assert ray.is_initialized()
        raise KeyboardInterrupt

    # Execute
    with pytest.raises(KeyboardInterrupt):
        simulate(SimConfig(backend="ray", ray_cpus=2, **DIGITS), tmp_path / "run", interrupt)
    # Assert
    assert not ray.is_initialized()
    assert read_summary(tmp_path / "run")["status"] == "interrupted"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """One local Ray instance for the module's runs (they join it and leave it up)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def without_timings(value: Any) -> Any:
    """The metrics without wall-clock fields (seconds, *_s)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items()
                if k != "seconds" and not k.endswith("_s")}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


@pytest.mark.parametrize("mode", [
    dict(attack="sign-flip", rule="fltrust"),
    dict(secure=True, committee=4, reproducible_secrets=True, rule="fltrust"),
    dict(secure=True, committee=4, reproducible_secrets=True, ledger="model", voters=1,
         peers=7, proposers=2, model="logreg"),
], ids=["plaintext", "secure", "secure-ledger"])
def test_ray_gives_exactly_the_in_process_metrics(cluster: None, tmp_path: Path,
                                                  mode: dict[str, Any]) -> None:
    # Prepare
    cfg = SimConfig(**{**DIGITS, **mode})
    # Execute
    local = simulate(cfg, tmp_path / "local")
    remote = simulate(cfg.replace(backend="ray"), tmp_path / "ray")
    # Assert: every value of every round, and the final model, bit for bit
    assert ray.is_initialized()  # a joined instance is left running
    rows = [without_timings(read_metrics(tmp_path / d)) for d in ("local", "ray")]
    assert len(rows[0]) == 2 and rows[0] == rows[1]
    assert local["model_sha256"] == remote["model_sha256"]
    assert json.loads((tmp_path / "ray" / "summary.json").read_text())["status"] == "finished"


def test_a_failing_worker_task_names_the_peer_and_round(cluster: None) -> None:
    # Prepare: peer 2's labels are out of range, which only training (on a worker) notices
    play = make_round_player(SimConfig(backend="ray", **{**DIGITS, "peers": 4}))
    x, y = play.fed.shards[2]
    play.fed.shards[2] = (x, torch.full_like(y, 99))
    # Execute
    with pytest.raises(PhalanxError) as caught:
        play(1)
    # Assert
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("ray worker: peer 2, round 1: ")
    assert "out of bounds" in message


@pytest.mark.parametrize(("changes", "needle"), [
    (dict(ray_address="auto"), "ray_address='auto' needs backend='ray'"),
    (dict(ray_cpus=2), "ray_cpus=2 needs backend='ray'"),
    (dict(backend="ray", ray_address="nohost"), "ray_address='nohost' must be 'auto' or HOST:PORT"),
    (dict(backend="ray", ray_address="auto", ray_cpus=2), "ray_cpus=2 sizes a local instance"),
    (dict(backend="spark"), "backend='spark' is unknown"),
])
def test_bad_backend_options_are_named(changes: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace("[", r"\[")):
        SimConfig(**changes)


def test_without_ray_the_cli_says_how_to_install_it(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: importing ray fails as on a machine without the extra
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    # Execute
    result = CliRunner().invoke(app, ["simulate", "--plaintext", "--ledger", "none",
                                      "--backend", "ray", "--peers", "4",
                                      "--rounds", "1", "--model", "logreg", "--no-progress",
                                      "--out", str(tmp_path / "run")])
    # Assert
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert lines == ["error: backend='ray' needs Ray: pip install 'phalanx[ray]'"]
