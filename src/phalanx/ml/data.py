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
#: A user's own data: ``idx:DIR`` (the four standard IDX names, no checksum) or ``npz:FILE``.
IDX_PREFIX, NPZ_PREFIX = "idx:", "npz:"
#: The four arrays of an ``npz:FILE`` dataset.
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")

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

    ``idx:DIR`` and ``npz:FILE`` load a user's own files (:func:`load_idx_dir`, :func:`load_npz`).
    ``seed`` drives the digits train/test split (MNIST-style sets have a fixed split).
    ``mirrors`` and ``fetch`` override the download source (tests pass ``file://`` URLs or a fake).
    Raises DataError when the files are missing and cannot be downloaded, or fail verification.
    """
    if name == "digits":
        return load_digits(seed=seed)
    if name.startswith(IDX_PREFIX):
        return load_idx_dir(Path(name[len(IDX_PREFIX):]).expanduser())
    if name.startswith(NPZ_PREFIX):
        return load_npz(Path(name[len(NPZ_PREFIX):]).expanduser())
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
    """Paths of the four IDX files of ``name``, downloading the missing ones if allowed.

    When a download fails, the DataError says in one short line which files to put where; the
    mirrors' individual failures are chained (``__cause__``) for ``--debug``.
    """
    specs = IDX_FILES[name]
    missing = [s for s in specs if find_file(directory, s) is None]
    if missing and not download:
        raise DataError(missing_message(name, directory, missing, "offline: download=False"))
    errors: list[str] = []
    for spec in missing:
        try:
            download_file(spec, directory, mirrors=mirrors or MIRRORS[name], fetch=fetch)
        except DataError as e:
            errors.append(str(e))
    if errors:
        still = [s for s in specs if find_file(directory, s) is None]
        cause = DataError(" | ".join(errors))
        raise DataError(missing_message(name, directory, still, "download failed")) from cause
    return [p for p in (find_file(directory, s) for s in specs) if p is not None]


def missing_message(name: str, directory: Path, missing: Sequence[IdxFile], why: str) -> str:
    """One short line: which files are missing, where to put them."""
    files = ", ".join(f"{s.name}.gz" for s in missing)
    return (f"dataset {name!r}: put {files} (gzipped or not) in {directory}, or pass "
            f"--data-dir / set PHALANX_DATA ({why})")


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
            raise DataError(f"{origin}: sha256 {got[:12]}… != the published {spec.gz_sha256[:12]}… "
                            "(truncated or corrupt: replace the file)")
    raw = decompress(data, origin) if compressed else data
    if spec.raw_sha256 is not None:
        got = hashlib.sha256(raw).hexdigest()
        if got != spec.raw_sha256:
            raise DataError(f"{origin}: sha256 {got[:12]}… of the uncompressed data != the "
                            f"published {spec.raw_sha256[:12]}… (truncated or corrupt: replace "
                            "the file, or load your own files with --dataset idx:DIR)")
    return raw


def decompress(data: bytes, origin: str) -> bytes:
    """gunzip ``data``; a corrupt stream becomes DataError."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as e:
        raise DataError(f"{origin}: not a valid gzip stream ({e}): replace the file") from e


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
        raise DataError(f"{origin}: IDX dims {dims} do not match its {len(raw)} bytes "
                        "(truncated?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


# ---------------------------------------------------------------------------------------------
# A user's own data


def load_idx_dir(directory: Path) -> Dataset:
    """The four standard IDX files (``.gz`` or not) of ``directory``, without checksums.

    Images are ``uint8`` IDX of shape (N, H, W) scaled by 1/255; labels ``uint8`` of shape (N,);
    the number of classes is the largest label + 1.
    """
    specs = [IdxFile(f.name, None, None) for f in _MNIST_FILES]
    if not directory.is_dir():
        raise DataError(f"dataset=idx:{directory}: no such directory")
    missing = [s for s in specs if find_file(directory, s) is None]
    if missing:
        files = ", ".join(f"{s.name}[.gz]" for s in missing)
        raise DataError(f"dataset=idx:{directory}: missing {files} (the four standard IDX "
                        "names: train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)")
    arrays = [read_idx(p, s) for s, p in ((s, find_file(directory, s)) for s in specs)
              if p is not None]
    origin = f"dataset=idx:{directory}"
    return make_own_dataset(origin, arrays[0], arrays[1], arrays[2], arrays[3], 255.0)


def load_npz(path: Path) -> Dataset:
    """``x_train, y_train, x_test, y_test`` from an ``.npz`` file (no pickles).

    Images (N, H, W) or (N, C, H, W): ``uint8`` (scaled by 1/255) or finite floats (as they are);
    labels: integers in [0, C) of shape (N,).
    """
    origin = f"dataset=npz:{path}"
    if not path.is_file():
        raise DataError(f"{origin}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_ARRAYS if k not in npz.files]
            if missing:
                raise DataError(f"{origin}: missing array(s) {missing}; it holds {npz.files}, "
                                f"and needs {list(NPZ_ARRAYS)}")
            x_tr, y_tr, x_te, y_te = (np.asarray(npz[k]) for k in NPZ_ARRAYS)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{origin}: not a readable .npz file ({e})") from e
    return make_own_dataset(origin, x_tr, y_tr, x_te, y_te, None)


def make_own_dataset(origin: str, x_tr: NDArray[np.generic], y_tr: NDArray[np.generic],
                     x_te: NDArray[np.generic], y_te: NDArray[np.generic],
                     max_value: float | None) -> Dataset:
    """Validate shapes and dtypes, then build the Dataset (``max_value``: uint8 scale)."""
    x_train = own_images(origin, "x_train", x_tr, max_value)
    x_test = own_images(origin, "x_test", x_te, max_value)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{origin}: x_train images {tuple(x_train.shape[1:])} and x_test images "
                        f"{tuple(x_test.shape[1:])} differ in shape")
    y_train = own_labels(origin, "y_train", y_tr, x_train.shape[0])
    y_test = own_labels(origin, "y_test", y_te, x_test.shape[0])
    num_classes = int(max(int(y_train.max()), int(y_test.max()))) + 1
    if num_classes < 2:
        raise DataError(f"{origin}: labels must span at least 2 classes (max label 0)")
    return Dataset(origin.split("=", 1)[1], x_train, y_train, x_test, y_test, num_classes)


def own_images(origin: str, key: str, x: NDArray[np.generic],
               max_value: float | None) -> torch.Tensor:
    """(N, H, W) or (N, C, H, W) images as a (N, C, H, W) float32 tensor."""
    if x.ndim not in (3, 4) or x.shape[0] == 0:
        raise DataError(f"{origin}: {key} has shape {x.shape}; expected (N, H, W) or "
                        "(N, C, H, W) with N >= 1")
    if x.dtype == np.uint8:
        scaled = x.astype(np.float32) / np.float32(max_value or 255.0)
    elif np.issubdtype(x.dtype, np.floating):
        scaled = x.astype(np.float32)
        if not np.isfinite(scaled).all():
            raise DataError(f"{origin}: {key} holds NaN or inf")
    else:
        raise DataError(f"{origin}: {key} has dtype {x.dtype}; expected uint8 or float")
    if scaled.ndim == 3:
        scaled = scaled[:, None]
    return torch.from_numpy(np.ascontiguousarray(scaled))


def own_labels(origin: str, key: str, y: NDArray[np.generic], n: int) -> torch.Tensor:
    """Integer labels >= 0 of shape (n,) as an int64 tensor."""
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (n,):
        raise DataError(f"{origin}: {key} has dtype {y.dtype} and shape {y.shape}; expected "
                        f"integers of shape ({n},)")
    if y.min() < 0:
        raise DataError(f"{origin}: {key} has a negative label {int(y.min())}")
    return torch.from_numpy(np.ascontiguousarray(y.astype(np.int64)))
