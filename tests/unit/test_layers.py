"""The import rules of architecture.md: `mpc` is pure, `protocol` never reaches up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "phalanx"

# layer -> the phalanx packages it must never import
FORBIDDEN = {
    "mpc": ("phalanx.ml", "phalanx.rules", "phalanx.attacks", "phalanx.chain", "phalanx.net",
            "phalanx.protocol", "phalanx.sim", "phalanx.node", "phalanx.cli"),
    "protocol": ("phalanx.net", "phalanx.sim", "phalanx.node", "phalanx.cli"),
    "rules": ("phalanx.sim", "phalanx.node", "phalanx.cli", "phalanx.net"),
    "chain": ("phalanx.sim", "phalanx.node", "phalanx.cli", "phalanx.rules", "phalanx.mpc"),
    "ml": ("phalanx.sim", "phalanx.node", "phalanx.cli", "phalanx.mpc", "phalanx.chain"),
}
# mpc must not touch the outside world either
MPC_FORBIDDEN_MODULES = ("torch", "socket", "time", "datetime", "random", "secrets", "os", "grpc")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_point_down(layer: str) -> None:
    for path in sorted((SRC / layer).rglob("*.py")):
        for name in imported_modules(path):
            assert not name.startswith(FORBIDDEN[layer]), f"{path} imports {name}"


def test_mpc_is_pure() -> None:
    for path in sorted((SRC / "mpc").rglob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            assert top not in MPC_FORBIDDEN_MODULES, f"{path} imports {name}"
            if top == "phalanx":
                assert name.startswith(("phalanx.mpc", "phalanx.errors")), f"{path} imports {name}"
