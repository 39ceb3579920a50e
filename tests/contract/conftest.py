"""Fixtures of the ledger contract tests (helpers live in chain_world.py)."""

from __future__ import annotations

import pytest
from chain_world import World, make_world

from phalanx.chain.embedded import get_deployer


@pytest.fixture(scope="session")
def compiled() -> object:
    """The compiled contract (once per session)."""
    return get_deployer()


@pytest.fixture
def world(compiled: object) -> World:
    """A fresh small task with 12 registered peers in its registration phase."""
    return make_world()
