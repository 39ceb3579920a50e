"""A peer's keystore (node/keystore.py): round trips, permissions, refusals."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from phalanx.errors import ConfigError
from phalanx.node import keystore as ks
from phalanx.node.keystore import SECP_FILE, X25519_FILE, create_keystore, load_keystore

FAST_N = 2**12  # scrypt work factor for tests (production: ks.SCRYPT_N)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.mark.usefixtures("loose_umask")
def test_plain_round_trip_with_private_modes(tmp_path: Path) -> None:
    # Prepare
    d = tmp_path / "peer"
    # Execute
    made = create_keystore(d)
    loaded = load_keystore(d)
    # Assert
    assert loaded.address == made.address and loaded.x25519_public == made.x25519_public
    assert len(loaded.x25519_public) == 32 and loaded.address.startswith("0x")
    assert mode(d) == 0o700 and mode(d / SECP_FILE) == 0o600 and mode(d / X25519_FILE) == 0o600
    signed = loaded.account.sign_message(encode_defunct(b"hi"))
    assert Account.recover_message(encode_defunct(b"hi"), signature=signed.signature) \
        == made.address
    assert sorted(p.name for p in d.iterdir()) == [SECP_FILE, X25519_FILE]  # no temporaries


def test_encrypted_round_trip_in_the_standard_format(tmp_path: Path) -> None:
    # Prepare
    made = create_keystore(tmp_path, "correct horse", scrypt_n=FAST_N)
    secp = (tmp_path / SECP_FILE).read_text()
    xdoc = json.loads((tmp_path / X25519_FILE).read_text())
    # Execute
    loaded = load_keystore(tmp_path, "correct horse")
    # Assert
    assert loaded.address == made.address and loaded.x25519_public == made.x25519_public
    assert bytes(made.account.key).hex() not in secp
    assert made.x25519.private_bytes_raw().hex() not in json.dumps(xdoc)
    assert "private_key" not in xdoc and xdoc["crypto"]["kdfparams"]["n"] == FAST_N
    assert bytes(Account.decrypt(json.loads(secp), "correct horse")) == bytes(made.account.key)
    assert json.loads(secp)["crypto"]["kdf"] == "scrypt"


def test_wrong_or_missing_passphrase_names_the_file(tmp_path: Path) -> None:
    create_keystore(tmp_path, "right", scrypt_n=FAST_N)
    with pytest.raises(ConfigError, match=rf"{tmp_path / SECP_FILE}: wrong passphrase"):
        load_keystore(tmp_path, "wrong")
    with pytest.raises(ConfigError, match=rf"{tmp_path / SECP_FILE} is encrypted"):
        load_keystore(tmp_path)
    plain = tmp_path / "plain"
    create_keystore(plain)
    with pytest.raises(ConfigError, match="not encrypted, yet a passphrase"):
        load_keystore(plain, "right")


def test_a_wrong_passphrase_for_the_x25519_file_alone_is_refused(tmp_path: Path) -> None:
    # Prepare: the x25519 file of a keystore with another passphrase
    a, b = tmp_path / "a", tmp_path / "b"
    create_keystore(a, "one", scrypt_n=FAST_N)
    create_keystore(b, "two", scrypt_n=FAST_N)
    (a / X25519_FILE).unlink()
    (b / X25519_FILE).rename(a / X25519_FILE)
    # Execute / Assert
    with pytest.raises(ConfigError, match=rf"{a / X25519_FILE}: wrong passphrase"):
        load_keystore(a, "one")


def test_keys_are_fresh_per_keystore(tmp_path: Path) -> None:
    a, b = create_keystore(tmp_path / "a"), create_keystore(tmp_path / "b")
    assert a.address != b.address and a.x25519_public != b.x25519_public
    assert repr(a) == f"Keystore(dir={a.dir!r})"  # no secret in logs


def test_an_existing_keystore_is_never_overwritten(tmp_path: Path) -> None:
    # Prepare
    first = create_keystore(tmp_path)
    before = (tmp_path / SECP_FILE).read_bytes()
    # Execute / Assert
    with pytest.raises(ConfigError, match=rf"{tmp_path / SECP_FILE} exists; refusing"):
        create_keystore(tmp_path)
    (tmp_path / SECP_FILE).unlink()
    with pytest.raises(ConfigError, match=rf"{tmp_path / X25519_FILE} exists; refusing"):
        create_keystore(tmp_path)
    # a file appearing between the check and the write (another process) is not replaced
    (tmp_path / SECP_FILE).write_bytes(before)
    os.chmod(tmp_path / SECP_FILE, 0o600)
    with pytest.raises(ConfigError, match="exists; refusing"):
        ks._write_new(tmp_path / SECP_FILE, b"{}")
    assert (tmp_path / SECP_FILE).read_bytes() == before
    assert load_keystore(tmp_path).address == first.address


def test_a_failed_creation_leaves_no_half_keystore(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real = ks._write_new
    calls: list[Path] = []

    def second_fails(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(ks, "_write_new", second_fails)
    with pytest.raises(OSError, match="disk full"):
        create_keystore(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_and_world_readable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"{tmp_path / SECP_FILE} is missing"):
        load_keystore(tmp_path)
    create_keystore(tmp_path)
    os.chmod(tmp_path / X25519_FILE, 0o644)
    with pytest.raises(ConfigError, match=rf"{tmp_path / X25519_FILE} is readable by others"):
        load_keystore(tmp_path)


def _edit(path: Path, edit: str) -> None:
    doc = json.loads(path.read_text())
    if edit == "truncate":
        path.write_text(path.read_text()[:40])
        return
    if edit == "list":
        doc = [doc]
    elif edit == "kind":
        doc["kind"] = "rsa"
    elif edit == "hex":
        doc["private_key"] = "zz"
    elif edit == "drop":
        del doc["private_key"]
    elif edit == "swap":  # a valid key that is not the one the file names
        doc["private_key"] = "11" * 32
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("name", [SECP_FILE, X25519_FILE])
@pytest.mark.parametrize("edit", ["truncate", "list", "kind", "hex", "drop", "swap"])
def test_corrupt_files_are_refused_naming_the_file(tmp_path: Path, name: str, edit: str) -> None:
    create_keystore(tmp_path)
    _edit(tmp_path / name, edit)
    with pytest.raises(ConfigError, match=rf"keystore file {tmp_path / name} is corrupt"):
        load_keystore(tmp_path)


def test_a_tampered_encrypted_x25519_file_is_refused(tmp_path: Path) -> None:
    create_keystore(tmp_path, "pw", scrypt_n=FAST_N)
    path = tmp_path / X25519_FILE
    doc = json.loads(path.read_text())
    doc["public_key"] = "00" * 32  # bound as associated data
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=rf"{path}: wrong passphrase \(or a corrupt file\)"):
        load_keystore(tmp_path, "pw")


def test_bad_work_factor_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="scrypt_n=1000"):
        create_keystore(tmp_path, "pw", scrypt_n=1000)
