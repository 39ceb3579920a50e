"""Run directories: unique atomic creation, refusal to mix runs, JSON without NaN, checkpoints.

A run directory is created with one ``os.mkdir`` (atomic: two runs started in the same second
get two directories, the second with a ``-2`` suffix). An existing non-empty ``--out`` is refused
unless ``overwrite``, which removes only the files a run writes (:data:`RUN_FILES`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from phalanx.errors import ConfigError
from phalanx.ml.data import write_atomic

#: every file a run writes (``--overwrite`` removes these and nothing else)
RUN_FILES = ("config.toml", "metrics.jsonl", "summary.json", "accuracy.png", "report.html",
             "model.npy", "state.npz")
#: how many ``-N`` suffixes a default run directory name may take before giving up
MAX_SUFFIX = 10_000


def slug(text: str) -> str:
    """``text`` usable in a directory name (``npz:/a/b.npz`` → ``npz-b``)."""
    if ":" in text:
        kind, _, rest = text.partition(":")
        text = f"{kind}-{Path(rest).stem or rest}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def make_unique_dir(root: Path, name: str) -> Path:
    """Create ``root/name`` (or ``name-2``, ``name-3``, …) atomically and return it."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"out={root} cannot be created: {e.strerror or e}") from e
    for k in range(1, MAX_SUFFIX + 1):
        path = root / (name if k == 1 else f"{name}-{k}")
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        except OSError as e:
            raise ConfigError(f"out={path} cannot be created: {e.strerror or e}") from e
        return path
    raise ConfigError(f"out={root / name}: {MAX_SUFFIX} directories of that name exist")


def prepare_out_dir(path: Path, *, overwrite: bool) -> Path:
    """An explicit ``--out``: created if missing; refused when non-empty unless ``overwrite``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"out={path} cannot be created: {e.strerror or e}") from e
    present = sorted(p.name for p in path.iterdir())
    if present and not overwrite:
        shown = ", ".join(present[:4]) + (", …" if len(present) > 4 else "")
        raise ConfigError(f"out={path} is not empty ({shown}); pass --overwrite to replace "
                          "its run files, or choose another --out")
    for name in RUN_FILES:
        (path / name).unlink(missing_ok=True)
    check_writable(path)
    return path


def check_writable(path: Path) -> None:
    """ConfigError naming ``path`` unless a file can be created in it."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise ConfigError(f"out={path} is not writable: {e.strerror or e}") from e


def finite_json(value: Any, path: str = "", reasons: dict[str, str] | None = None) -> Any:
    """``value`` with every NaN / inf float replaced by None; ``reasons[path]`` says which."""
    if isinstance(value, float | np.floating):
        if math.isfinite(value):
            return float(value)
        if reasons is not None:
            reasons[path or "value"] = "nan" if math.isnan(value) else (
                "inf" if value > 0 else "-inf")
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): finite_json(v, f"{path}.{k}" if path else str(k), reasons)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v, f"{path}[{i}]", reasons) for i, v in enumerate(value)]
    return value


def dumps_finite(record: Mapping[str, Any], **kw: Any) -> str:
    """JSON of ``record`` with no NaN or inf: such values become null, and ``non_finite`` maps
    each of their paths to what it was (``"nan"``, ``"inf"``, ``"-inf"``)."""
    reasons: dict[str, str] = {}
    clean = finite_json(record, "", reasons)
    if reasons:
        clean["non_finite"] = reasons
    return json.dumps(clean, allow_nan=False, **kw)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` next to ``path`` and rename it into place."""
    write_atomic(path, text.encode())


def save_model(path: Path, params: np.ndarray) -> str:
    """The flat float32 parameter vector as ``.npy``; returns the file's sha256."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        np.save(handle, np.ascontiguousarray(params, dtype=np.float32))
    os.replace(tmp, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_state(path: Path, rnd: int, state: Mapping[str, np.ndarray]) -> None:
    """The round player's state after round ``rnd`` (atomic: never a half-written file)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent, suffix=".npz")
    os.close(fd)
    try:
        arrays: dict[str, Any] = {"round": np.int64(rnd), **state}
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: Path) -> tuple[int, dict[str, np.ndarray]]:
    """``(round, arrays)`` from :func:`save_state`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: np.array(npz[k]) for k in npz.files}
    except (OSError, ValueError) as e:
        raise ConfigError(f"resume: {path} is missing or unreadable ({e})") from e
    return int(arrays.pop("round")), arrays


def timestamp() -> str:
    """``YYYYmmdd-HHMMSS`` of now (local time)."""
    return time.strftime("%Y%m%d-%H%M%S")
