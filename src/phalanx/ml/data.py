"""Datasets: scikit-learn digits (offline default), MNIST and Fashion-MNIST from IDX files.

Every image tensor is ``(N, 1, H, W)`` float32 in [0, 1]; labels are int64 in ``[0, C)``.

MNIST and Fashion-MNIST live as the four original IDX files (``.gz`` or uncompressed) in one
directory per dataset. The directory is, in order: the ``data_dir`` argument, ``$PHALANX_DATA``, or
``~/.cache/phalanx/data`` (``$XDG_CACHE_HOME`` honoured). If that directory has a sub-directory
named after the dataset (``mnist``, ``fashion-mnist``), the files are looked for there.

Integrity (docs/ml.md, "Checksums"): MNIST files are verified against the sha256 of the
*uncompressed* files, so any gzip of them is accepted. Fashion-MNIST files are verified against the
sha256 of the published ``.gz`` files (no published sha256 of the uncompressed files was found);
uncompressed Fashion-MNIST files pass an IDX structure check only. Missing files are downloaded
from the canonical mirrors when ``download=True``; a download that fails its checksum is discarded
and leaves no file behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from phalanx.errors import ConfigError, DataError

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion-mnist")

#: The share of digits examples held out as the test split (seeded, stratified).
DIGITS_TEST_FRACTION = 0.2

Fetch = Callable[[str], bytes]


@dataclass(frozen=True)
class IdxFile:
    """One IDX file of a dataset and what it is checked against."""

    name: str  # canonical name without ".gz", e.g. "train-images-idx3-ubyte"
    raw_sha256: str | None  # sha256 of the uncompressed file, if published
    gz_sha256: str | None  # sha256 of the canonical .gz file, if published


# sha256 of the uncompressed MNIST files (as listed in /work/shared/data/mnist/README.md).
_MNIST_FILES = (
    IdxFile("train-images-idx3-ubyte",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", None),
    IdxFile("train-labels-idx1-ubyte",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", None),
    IdxFile("t10k-images-idx3-ubyte",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", None),
    IdxFile("t10k-labels-idx1-ubyte",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", None),
)
# sha256 of the published Fashion-MNIST .gz files (two independent sources agree; docs/ml.md).
_FASHION_FILES = (
    IdxFile("train-images-idx3-ubyte", None,
            "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc"),
    IdxFile("train-labels-idx1-ubyte", None,
            "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc"),
    IdxFile("t10k-images-idx3-ubyte", None,
            "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229"),
    IdxFile("t10k-labels-idx1-ubyte", None,
            "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf"),
)
IDX_FILES: dict[str, tuple[IdxFile, ...]] = {"mnist": _MNIST_FILES, "fashion-mnist": _FASHION_FILES}

#: Canonical mirrors, tried in order; each serves ``<mirror><name>.gz``.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no boolean equality; compare by identity
class Dataset:
    """A labelled image dataset split into train and test (images ``(N, 1, H, W)`` in [0, 1])."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)


def load_dataset(
    name: str,
    data_dir: Path | None = None,
    *,
    seed: int = 0,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    fetch: Fetch | None = None,
) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`).

    ``seed`` drives the digits train/test split (MNIST-style sets have a fixed split).
    ``mirrors`` and ``fetch`` override the download source (tests pass ``file://`` URLs or a fake).
    Raises DataError when the files are missing and cannot be downloaded, or fail verification.
    """
    if name == "digits":
        return load_digits(seed=seed)
    if name not in IDX_FILES:
        raise ConfigError(f"dataset name={name!r} is unknown; choose one of {DATASETS}")
    directory = get_data_dir(name, data_dir)
    paths = ensure_files(name, directory, download=download, mirrors=mirrors, fetch=fetch)
    x_train = images_to_tensor(read_idx(paths[0], IDX_FILES[name][0]), 255.0)
    y_train = torch.from_numpy(read_idx(paths[1], IDX_FILES[name][1]).astype(np.int64))
    x_test = images_to_tensor(read_idx(paths[2], IDX_FILES[name][2]), 255.0)
    y_test = torch.from_numpy(read_idx(paths[3], IDX_FILES[name][3]).astype(np.int64))
    return Dataset(name, x_train, y_train, x_test, y_test, num_classes=10)


def load_digits(*, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (1797 images, pixel values 0..16 scaled by 1/16), split 80/20.

    The split is stratified by class and seeded, so every seed gives a reproducible split.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)
    labels = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=DIGITS_TEST_FRACTION, stratify=labels, random_state=seed
    )
    return Dataset(
        "digits",
        images_to_tensor(x_tr, 16.0),
        torch.from_numpy(np.ascontiguousarray(y_tr)),
        images_to_tensor(x_te, 16.0),
        torch.from_numpy(np.ascontiguousarray(y_te)),
        num_classes=10,
    )


def images_to_tensor(images: NDArray[np.generic], max_value: float) -> torch.Tensor:
    """``(N, H, W)`` array → ``(N, 1, H, W)`` float32 tensor scaled into [0, 1]."""
    scaled = np.asarray(images, dtype=np.float32) / np.float32(max_value)
    return torch.from_numpy(np.ascontiguousarray(scaled)).unsqueeze(1)


def get_data_dir(name: str, data_dir: Path | None = None) -> Path:
    """The directory holding ``name``'s files (argument, ``$PHALANX_DATA``, user cache)."""
    if data_dir is not None:
        base = Path(data_dir).expanduser()
    elif os.environ.get("PHALANX_DATA"):
        base = Path(os.environ["PHALANX_DATA"]).expanduser()
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(cache) / "phalanx" / "data" / name
    return base / name if (base / name).is_dir() else base


def find_file(directory: Path, spec: IdxFile) -> Path | None:
    """The present copy of ``spec`` in ``directory`` (``.gz`` preferred), or None."""
    for candidate in (directory / f"{spec.name}.gz", directory / spec.name):
        if candidate.is_file():
            return candidate
    return None


def ensure_files(
    name: str,
    directory: Path,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    fetch: Fetch | None = None,
) -> list[Path]:
    """Paths of the four IDX files of ``name``, downloading the missing ones if allowed."""
    specs = IDX_FILES[name]
    missing = [s for s in specs if find_file(directory, s) is None]
    if missing and not download:
        raise DataError(missing_message(name, directory, missing, "download=False"))
    errors: list[str] = []
    for spec in missing:
        try:
            download_file(spec, directory, mirrors=mirrors or MIRRORS[name], fetch=fetch)
        except DataError as e:
            errors.append(str(e))
    if errors:
        still = [s for s in specs if find_file(directory, s) is None]
        raise DataError(missing_message(name, directory, still, "; ".join(errors)))
    return [p for p in (find_file(directory, s) for s in specs) if p is not None]


def missing_message(name: str, directory: Path, missing: Sequence[IdxFile], why: str) -> str:
    """A DataError message that says where to put which files."""
    files = ", ".join(f"{s.name}.gz" for s in missing)
    return (
        f"dataset {name!r}: missing {files} in {directory} ({why}). Put the original IDX files "
        f"(gzipped or not) in {directory}, or pass data_dir / set PHALANX_DATA; they are served "
        f"by {MIRRORS[name][0]}"
    )


def fetch_url(url: str) -> bytes:
    """Read ``url`` (http(s) or file://) into memory; network errors become DataError."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (mirrors are fixed)
            data: bytes = response.read()
            return data
    except (OSError, ValueError) as e:
        raise DataError(f"cannot fetch {url}: {e}") from e


def download_file(
    spec: IdxFile, directory: Path, *, mirrors: Sequence[str], fetch: Fetch | None = None
) -> Path:
    """Fetch ``<mirror><spec.name>.gz`` from the first mirror whose bytes verify; atomic write.

    The bytes are verified in memory before anything is written; the file appears under its final
    name only through an atomic rename, so a failed or corrupt download leaves no file behind.
    """
    fetch = fetch or fetch_url
    failures: list[str] = []
    for mirror in mirrors:
        url = f"{mirror}{spec.name}.gz"
        try:
            payload = fetch(url)
            verify_bytes(payload, spec, compressed=True, origin=url)
        except DataError as e:
            failures.append(str(e))
            continue
        return write_atomic(directory / f"{spec.name}.gz", payload)
    raise DataError(f"no mirror served a verified {spec.name}.gz: " + " | ".join(failures))


def write_atomic(path: Path, payload: bytes) -> Path:
    """Write ``payload`` to a temporary file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def verify_bytes(data: bytes, spec: IdxFile, *, compressed: bool, origin: str) -> bytes:
    """Check ``data`` against the published checksum; return the uncompressed bytes."""
    if compressed and spec.gz_sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != spec.gz_sha256:
            raise DataError(f"{origin}: sha256 {got} != published {spec.gz_sha256}")
    raw = decompress(data, origin) if compressed else data
    if spec.raw_sha256 is not None:
        got = hashlib.sha256(raw).hexdigest()
        if got != spec.raw_sha256:
            raise DataError(f"{origin}: sha256 of uncompressed data {got} != {spec.raw_sha256}")
    return raw


def decompress(data: bytes, origin: str) -> bytes:
    """gunzip ``data``; a corrupt stream becomes DataError."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as e:
        raise DataError(f"{origin}: not a valid gzip stream: {e}") from e


def read_idx(path: Path, spec: IdxFile) -> NDArray[np.uint8]:
    """Read and verify one IDX file of unsigned bytes (``.gz`` or raw) into an array."""
    raw = verify_bytes(path.read_bytes(), spec, compressed=path.suffix == ".gz", origin=str(path))
    return parse_idx(raw, str(path))


def parse_idx(raw: bytes, origin: str) -> NDArray[np.uint8]:
    """Parse IDX bytes: magic ``0x0000 08 ndim``, big-endian int32 dims, then uint8 data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise DataError(f"{origin}: not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int(v) for v in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    if len(raw) != header + int(np.prod(dims)):
        raise DataError(f"{origin}: IDX dims {dims} do not match its {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
