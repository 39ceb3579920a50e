"""Known-answer vectors for field ops, the PRG, seeded sharing and RS decoding.

Each case is ``tests/vectors/mpc/<step>.json`` = ``{meta, pre, input, post}``; ``post: null``
means the input must be rejected (``meta.reason`` names why). The function that checks a case
also emits it: ``PHALANX_WRITE_VECTORS=1 pytest tests/vectors/test_mpc_vectors.py`` rewrites
the files from the current implementation (then review the diff: a change is a format break).
Field answers are cross-checked against Python's big integers when written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from phalanx.errors import ReconstructionError
from phalanx.mpc import field as F
from phalanx.mpc.prg import Prg, expand
from phalanx.mpc.rs import decode
from phalanx.mpc.shamir import expand_seeded, share_seeded

DIR = Path(__file__).parent / "mpc"
WRITE = os.environ.get("PHALANX_WRITE_VECTORS") == "1"
P = F.P
SEED = bytes(range(32))


def _field_case() -> dict[str, Any]:
    a = [0, 1, P - 1, 1 << 60, 123456789123456789, (1 << 32) + 5]
    b = [P - 1, P - 1, P - 1, 3, 987654321987654321, (1 << 32) - 5]
    av, bv = np.array(a, np.uint64), np.array(b, np.uint64)
    post = {"mul": [int(v) for v in F.mul(av, bv)], "add": [int(v) for v in F.add(av, bv)],
            "sub": [int(v) for v in F.sub(av, bv)], "dot": F.dot(av, bv)}
    if WRITE:  # independent reference: Python integers
        assert post["mul"] == [x * y % P for x, y in zip(a, b, strict=True)]
        assert post["dot"] == sum(x * y for x, y in zip(a, b, strict=True)) % P
    return {"meta": {"step": "field"}, "pre": {"p": P}, "input": {"a": a, "b": b}, "post": post}


def _prg_case() -> dict[str, Any]:
    post = {"field_elements": [int(v) for v in Prg(SEED).field_elements(4)],
            "expand_share_x": [int(v) for v in expand(SEED, 4, "share", "x")]}
    return {"meta": {"step": "prg", "cipher": "AES-256-CTR, zero IV"}, "pre": {},
            "input": {"seed": SEED.hex()}, "post": post}


def _sharing_case() -> dict[str, Any]:
    secret = np.array([0, 1, P - 1, 42], np.uint64)
    sh = share_seeded(secret, m=5, t=1, seeds={2: SEED}, label="x")
    post = {str(j): [int(v) for v in vec] for j, vec in sh.explicit.items()}
    post["2"] = [int(v) for v in expand_seeded(SEED, 4, "x")]
    return {"meta": {"step": "sharing", "points": "alpha_j = j + 1"}, "pre": {"m": 5, "t": 1},
            "input": {"secret": [int(v) for v in secret], "seeded": {"2": SEED.hex()}},
            "post": post}


def _decode(m: int, degree: int, errors: dict[int, int]) -> dict[str, Any]:
    coeffs = [7, 11, 13, 17, 19][: degree + 1]
    shares = [[F.horner(coeffs, j + 1) for _ in range(2)] for j in range(m)]
    for j, delta in errors.items():
        shares[j][1] = (shares[j][1] + delta) % P
    case: dict[str, Any] = {"meta": {"step": "decoding"}, "pre": {"m": m, "degree": degree},
                            "input": {"shares": shares}}
    try:
        opened = decode(list(range(m)), np.array(shares, np.uint64), degree, Prg(SEED))
        case["post"] = {"value": [int(v) for v in opened.value], "bad": list(opened.bad)}
    except ReconstructionError:
        case["meta"]["reason"] = "uncorrectable"
        case["post"] = None
    return case


CASES = {
    "field": _field_case,
    "prg": _prg_case,
    "sharing": _sharing_case,
    "decoding_clean": lambda: _decode(5, 2, {}),
    "decoding_one_error": lambda: _decode(5, 2, {3: 5}),
    "decoding_two_errors_m9": lambda: _decode(9, 4, {0: 1, 8: P - 1}),
    "decoding_uncorrectable": lambda: _decode(4, 2, {1: 1}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_known_answer(name: str) -> None:
    path = DIR / f"{name}.json"
    got = CASES[name]()
    if WRITE or not path.exists():
        DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=1) + "\n")
    want = json.loads(path.read_text())
    assert got == want
