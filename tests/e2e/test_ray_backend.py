"""simulate --backend ray (issue 14, docs/scale.md): the same metrics as in-process (also with
the per-peer protocol's steps on actors, under server and client adversaries), a worker's or
actor's failure as one line naming the peer and round, a local instance shut down on Ctrl-C,
and a one-line install hint without Ray. One local instance with 2 CPUs serves the module."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import torch
from typer.testing import CliRunner

from phalanx.cli import app
from phalanx.errors import ConfigError, PhalanxError
from phalanx.sim.config import SimConfig
from phalanx.sim.run import RoundPlayer, make_round_player, read_metrics, read_summary, simulate

ray = pytest.importorskip("ray")

DIGITS = dict(peers=5, rounds=2, model="logreg", seed=4, malicious=0.2, local_epochs=1,
              secure=False, ledger="none")


def ray_processes() -> list[psutil.Process]:
    """This process's descendants that belong to a Ray instance (GCS, raylet, workers)."""
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "ray" in " ".join(proc.cmdline()).lower():
                out.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def test_ctrl_c_shuts_the_local_instance_down(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: no instance yet, so the run starts (and owns) one; Ctrl-C comes mid-round,
    # as the first training is handed to Ray
    from phalanx.sim.ray_backend import RayExecutor

    assert not ray.is_initialized() and not ray_processes()
    started: list[int] = []

    def interrupt(self: RayExecutor, job: Any) -> Any:
        assert ray.is_initialized()
        started.extend(p.pid for p in ray_processes())
        raise KeyboardInterrupt

    monkeypatch.setattr(RayExecutor, "train", interrupt)
    # Execute
    with pytest.raises(KeyboardInterrupt):
        simulate(SimConfig(backend="ray", ray_cpus=1, **{**DIGITS, "rounds": 1}),
                 tmp_path / "run")
    # Assert: the instance and every process it started are gone
    assert started and not ray.is_initialized()
    _, alive = psutil.wait_procs([psutil.Process(p) for p in started
                                  if psutil.pid_exists(p)], timeout=10)
    assert not alive
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


#: the per-peer protocol on actors (``sim/ray_peers.py``) with a tampering member (disputes,
#: evidence, a server slashed) and a client resending part 1 (refused by every member): the
#: refusals' order, the disputes and the slashes must match too
LEDGER = dict(secure=True, committee=5, reproducible_secrets=True, ledger="model", voters=2,
              peers=9, seed=0, malicious=0.34, attack="sign-flip", rule="fltrust",
              server_attack="tamper", client_fault="resend-part1", faulty_clients=1)


@pytest.mark.parametrize("mode", [
    dict(attack="sign-flip", rule="fltrust"),
    dict(secure=True, committee=4, reproducible_secrets=True, rule="fltrust"),
    LEDGER,
], ids=["plaintext", "secure", "secure-ledger-adversaries"])
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
    if "ledger" in mode:  # the adversaries did act, in both backends
        extra = rows[0][0]["extra"]
        assert extra["refused_messages"] and extra["cheating_servers"]
        assert any(why == "server" for _, why, _ in extra["ledger"]["slashed"])
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


@pytest.fixture(scope="module")
def ledger_round(cluster: None) -> Iterator[RoundPlayer]:
    """A per-peer ledger run on actors that played round 1."""
    play = make_round_player(SimConfig(backend="ray", rounds=2, **{**LEDGER, "peers": 7,
                                                                   "committee": 4}))
    play(1)
    yield play
    play.fed.executor.close()


def test_the_peers_step_on_actors_with_the_drivers_thread_counts(
        ledger_round: RoundPlayer) -> None:
    from phalanx.sim.ray_peers import blas_counts

    # Prepare
    (host,) = ledger_round.fed.executor.hosts  # type: ignore[attr-defined]
    # Execute
    threads = host.threads()
    # Assert: every step ran on the actors (the driver's copies never opened a round), and
    # each actor sums floats with as many threads as the driver
    assert len(threads) == 2 and all(p.view is None for p in host.run.peers)
    assert all(t == (torch.get_num_threads(), blas_counts()) for t in threads), threads
    assert blas_counts()


def test_a_failing_peer_step_names_the_peer_and_round(ledger_round: RoundPlayer) -> None:
    # Prepare: the driver's global model no longer matches the one on chain, which only a
    # proposer's step (on its actor) notices
    ledger_round.fed.global_params = ledger_round.fed.global_params + np.float32(1)
    # Execute
    with pytest.raises(PhalanxError) as caught:
        ledger_round(2)
    # Assert: one line naming the peer, the (ledger) round and the step
    message = str(caught.value)
    assert "\n" not in message
    prefix, _, cause = message.partition(": PhalanxError: ")
    peer = prefix.removeprefix("ray peer actor: peer ").partition(",")[0]
    assert prefix == f"ray peer actor: peer {peer}, ledger round 1, RoundOpened"
    assert cause == f"peer {peer} trains from a model other than the global one"
