"""Dataset loaders: digits, real MNIST IDX files, checksums, the download path and its errors."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from phalanx.errors import ConfigError, DataError
from phalanx.ml import data
from phalanx.ml.data import IdxFile, download_file, load_dataset, parse_idx

SHARED_MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(
    not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"the shared MNIST files are not present at {SHARED_MNIST}",
)


def make_idx(array: np.ndarray) -> bytes:
    """IDX bytes of a uint8 array (the format MNIST ships in)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def fake_specs(seed: int) -> tuple[tuple[IdxFile, ...], dict[str, bytes]]:
    """A tiny 4-file IDX dataset (12 train, 4 test images of 28x28) and its raw-sha256 specs."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 12),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (4, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 4),
    }
    raw = {name: make_idx(a) for name, a in arrays.items()}
    specs = tuple(IdxFile(n, hashlib.sha256(b).hexdigest(), None) for n, b in raw.items())
    return specs, raw


def test_digits_shapes_range_and_stratified_split() -> None:
    # Execute
    ds = load_dataset("digits", seed=3)
    # Assert
    assert ds.input_shape == (1, 8, 8)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 1797
    assert ds.x_test.shape[0] == 360
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    train_share = np.bincount(ds.y_train.numpy()) / ds.y_train.shape[0]
    test_share = np.bincount(ds.y_test.numpy()) / ds.y_test.shape[0]
    assert np.abs(train_share - test_share).max() < 0.01


def test_digits_split_is_reproducible_and_seed_dependent() -> None:
    a, b, c = load_dataset("digits", seed=1), load_dataset("digits", seed=1), load_dataset(
        "digits", seed=2
    )
    assert torch.equal(a.y_test, b.y_test) and torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.x_test, c.x_test)


@needs_mnist
def test_mnist_from_shared_dir_has_verified_shapes_and_labels() -> None:
    # Execute
    ds = load_dataset("mnist", SHARED_MNIST, download=False)
    # Assert
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    assert set(np.unique(ds.y_train.numpy())) == set(range(10))
    assert float(ds.x_train.max()) == 1.0 and float(ds.x_train.min()) == 0.0


@needs_mnist
def test_mnist_parent_dir_and_env_resolve_to_the_dataset_folder(monkeypatch) -> None:
    monkeypatch.setenv("PHALANX_DATA", str(SHARED_MNIST.parent))
    assert data.get_data_dir("mnist") == SHARED_MNIST
    assert data.get_data_dir("mnist", SHARED_MNIST.parent) == SHARED_MNIST


@needs_mnist
def test_uncompressed_mnist_file_is_accepted_and_verified(tmp_path: Path) -> None:
    # Prepare: three gzipped files, the train labels uncompressed
    for path in SHARED_MNIST.glob("*-ubyte.gz"):
        if path.name.startswith("train-labels"):
            (tmp_path / path.stem).write_bytes(gzip.decompress(path.read_bytes()))
        else:
            (tmp_path / path.name).write_bytes(path.read_bytes())
    # Execute
    ds = load_dataset("mnist", tmp_path, download=False)
    # Assert
    assert ds.y_train.shape == (60000,) and int(ds.y_train[0]) == 5  # MNIST's first label is 5


@needs_mnist
def test_corrupted_mnist_copy_fails_its_checksum(tmp_path: Path) -> None:
    # Prepare: a valid copy with one flipped label byte, re-gzipped
    for name in ("train-images", "t10k-images", "t10k-labels"):
        src = SHARED_MNIST / f"{name}-idx{3 if 'images' in name else 1}-ubyte.gz"
        (tmp_path / src.name).write_bytes(src.read_bytes())
    labels = bytearray(gzip.decompress((SHARED_MNIST / "train-labels-idx1-ubyte.gz").read_bytes()))
    labels[100] = (labels[100] + 1) % 10
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes(labels))
    # Execute / Assert
    with pytest.raises(DataError, match="sha256"):
        load_dataset("mnist", tmp_path, download=False)


def test_missing_files_offline_name_the_directory_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path) in message
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert name in message


def test_unreachable_mirrors_raise_data_error_with_where_to_put_files(tmp_path: Path) -> None:
    def offline(url: str) -> bytes:
        raise DataError(f"cannot fetch {url}: network unreachable")

    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path, fetch=offline)
    assert str(tmp_path) in str(err.value) and "train-labels-idx1-ubyte.gz" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_download_from_file_url_verifies_and_loads(tmp_path: Path, monkeypatch) -> None:
    # Prepare: a mirror directory served over file:// with gzipped fake files
    specs, raw = fake_specs(seed=0)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, payload in raw.items():
        (mirror / f"{name}.gz").write_bytes(gzip.compress(payload))
    monkeypatch.setitem(data.IDX_FILES, "mnist", specs)
    target = tmp_path / "cache"
    # Execute
    ds = load_dataset("mnist", target, mirrors=[mirror.as_uri() + "/"])
    # Assert
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (4, 1, 28, 28)
    assert sorted(p.name for p in target.iterdir()) == sorted(f"{n}.gz" for n in raw)


def test_wrong_checksum_is_rejected_and_leaves_no_partial_file(tmp_path: Path) -> None:
    # Prepare: the first mirror serves tampered bytes, the second has nothing
    specs, raw = fake_specs(seed=1)
    spec = specs[1]
    tampered = gzip.compress(raw[spec.name][:-1] + b"\x07")
    served = {f"bad://{spec.name}.gz": tampered}

    def fetch(url: str) -> bytes:
        if url not in served:
            raise DataError(f"cannot fetch {url}")
        return served[url]

    # Execute / Assert
    with pytest.raises(DataError, match="sha256"):
        download_file(spec, tmp_path, mirrors=["bad://", "none://"], fetch=fetch)
    assert list(tmp_path.iterdir()) == []


def test_second_mirror_is_used_when_the_first_is_corrupt(tmp_path: Path) -> None:
    specs, raw = fake_specs(seed=2)
    spec = specs[0]
    served = {"bad://": b"not gzip", "good://": gzip.compress(raw[spec.name])}
    path = download_file(
        spec, tmp_path, mirrors=list(served), fetch=lambda u: served[u[: u.index("//") + 2]]
    )
    assert gzip.decompress(path.read_bytes()) == raw[spec.name]


def test_published_gz_checksum_is_checked_before_decompression(tmp_path: Path) -> None:
    payload = gzip.compress(make_idx(np.zeros(3, np.uint8)))
    spec = IdxFile("t10k-labels-idx1-ubyte", None, hashlib.sha256(b"other").hexdigest())
    with pytest.raises(DataError, match="published"):
        download_file(spec, tmp_path, mirrors=["x://"], fetch=lambda url: payload)


def test_parse_idx_rejects_bad_magic_and_truncation() -> None:
    good = make_idx(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert parse_idx(good, "x").tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(DataError, match="magic"):
        parse_idx(b"\x00\x00\x0d\x01" + good[4:], "x")
    with pytest.raises(DataError, match="dims"):
        parse_idx(good[:-1], "x")


def test_unknown_dataset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cifar"):
        load_dataset("cifar")


def write_own_idx(directory: Path, n: int = 10) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, arr in (("train-images-idx3-ubyte", rng.integers(0, 255, (n, 5, 5), np.uint8)),
                      ("train-labels-idx1-ubyte", (np.arange(n) % 4).astype(np.uint8)),
                      ("t10k-images-idx3-ubyte", rng.integers(0, 255, (3, 5, 5), np.uint8)),
                      ("t10k-labels-idx1-ubyte", np.array([0, 1, 2], np.uint8))):
        (directory / name).write_bytes(make_idx(arr))


def test_own_idx_directory_loads_without_checksum(tmp_path: Path) -> None:
    write_own_idx(tmp_path)
    ds = load_dataset(f"idx:{tmp_path}")
    assert ds.x_train.shape == (10, 1, 5, 5) and ds.num_classes == 4
    assert float(ds.x_train.max()) <= 1.0


def test_own_idx_names_the_missing_file(tmp_path: Path) -> None:
    write_own_idx(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match="missing t10k-images-idx3-ubyte"):
        load_dataset(f"idx:{tmp_path}")


def test_own_npz_validates_arrays(tmp_path: Path) -> None:
    # Prepare
    good = dict(x_train=np.zeros((4, 2, 6, 6), np.float32), y_train=np.array([0, 1, 0, 1]),
                x_test=np.zeros((2, 2, 6, 6), np.float32), y_test=np.array([1, 0]))
    np.savez(tmp_path / "ok.npz", **good)
    # Execute / Assert
    ds = load_dataset(f"npz:{tmp_path / 'ok.npz'}")
    assert ds.input_shape == (2, 6, 6) and ds.num_classes == 2
    for change, match in ((dict(y_train=np.array([0, 1, 0])), "y_train"),
                          (dict(y_test=np.array([0.5, 1.0])), "y_test has dtype float64"),
                          (dict(x_test=np.zeros((2, 3, 6, 6), np.float32)), "differ in shape"),
                          (dict(x_train=np.full((4, 2, 6, 6), np.nan, np.float32)), "NaN"),
                          (dict(x_train=np.zeros((4, 6), np.float32)), "x_train has shape")):
        np.savez(tmp_path / "bad.npz", **{**good, **change})
        with pytest.raises(DataError, match=match):
            load_dataset(f"npz:{tmp_path / 'bad.npz'}")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a readable"):
        load_dataset(f"npz:{tmp_path / 'junk.npz'}")
