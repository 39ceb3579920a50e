"""Fixtures of the network tests: anvil from npm (as tests/e2e/test_chain_anvil.py), and a
network whose every process is stopped by a finalizer."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from phalanx.node.network import REPO_ANVIL, Network, NetworkOptions, create_network
from phalanx.sim.config import SimConfig


@pytest.fixture
def make_network(tmp_path: Path) -> Iterator[Callable[..., Network]]:
    if not REPO_ANVIL.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm not found: cannot install @foundry-rs/anvil (run `make anvil`)")
        pytest.fail(f"npm is installed but {REPO_ANVIL} is missing: run `make anvil`")
    made: list[Network] = []

    def make(cfg: SimConfig, **opts: object) -> Network:
        net = create_network(cfg, tmp_path / f"net{len(made)}",
                             NetworkOptions(echo=lambda line: print(line, flush=True),
                                            **opts))  # type: ignore[arg-type]
        made.append(net)
        return net

    yield make
    for net in made:
        net.stop()
