"""A peer's keystore: its secp256k1 identity (chain and message signatures) and X25519 key.

A keystore is a directory (mode 0700) with two files (mode 0600), docs/network.md:

- ``secp256k1.json``: with a passphrase, the Ethereum v3 keystore of ``Account.encrypt`` (scrypt
  + AES-128-CTR + keccak MAC; geth, foundry and eth-account read it); without, a plain JSON
  ``{"version": 1, "kind": "secp256k1", "address", "private_key"}``.
- ``x25519.json``: ``{"version": 1, "kind": "x25519", "public_key", ...}`` with, under a
  passphrase, ``crypto`` = scrypt (its own salt) + AES-256-GCM over the 32 secret bytes, the
  public key as associated data; without, ``private_key`` in hex.

Both secrets come from the OS CSPRNG. Files are written to a temporary name, fsynced, then
hard-linked into place, which fails if the name exists: a keystore is never overwritten, and a
crash leaves either no keystore or a whole one. Loading refuses files that group or others can
read, and names the file in every error.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_account import Account
from eth_account.signers.local import LocalAccount

from phalanx.errors import ConfigError

SECP_FILE = "secp256k1.json"
X25519_FILE = "x25519.json"
VERSION = 1
SCRYPT_N = 2**18  # eth-account's default work factor (~0.5-1 s, 256 MiB per unlock)
SCRYPT_R, SCRYPT_P = 8, 1
_AAD = b"phalanx/keystore/x25519/v1/"


@dataclass(frozen=True)
class Keystore:
    """A peer's two keys, unlocked."""

    dir: Path
    account: LocalAccount = field(repr=False)
    x25519: X25519PrivateKey = field(repr=False)

    @property
    def address(self) -> str:
        """The checksummed Ethereum address of the secp256k1 key."""
        return str(self.account.address)

    @property
    def x25519_public(self) -> bytes:
        """The raw 32-byte X25519 public key."""
        return self.x25519.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def create_keystore(dir: Path | str, passphrase: str | None = None, *,
                    scrypt_n: int = SCRYPT_N) -> Keystore:
    """Create a keystore with fresh keys in ``dir`` (made 0700); ConfigError if one is there.

    ``scrypt_n`` is the scrypt work factor under a passphrase (a power of two; tests lower it).
    """
    path = Path(dir)
    if scrypt_n < 2 or scrypt_n & (scrypt_n - 1):
        raise ConfigError(f"scrypt_n={scrypt_n} must be a power of two >= 2")
    for name in (SECP_FILE, X25519_FILE):
        if (path / name).exists():
            raise ConfigError(f"keystore file {path / name} exists; refusing to overwrite it")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    account = _new_account()
    xkey = X25519PrivateKey.generate()  # OpenSSL's CSPRNG, seeded by the OS
    store = Keystore(path, account, xkey)
    docs = {SECP_FILE: _secp_doc(account, passphrase, scrypt_n),
            X25519_FILE: _x25519_doc(store, passphrase, scrypt_n)}
    written: list[Path] = []
    try:
        for name, doc in docs.items():
            _write_new(path / name, json.dumps(doc, indent=1).encode())
            written.append(path / name)
    except BaseException:
        for p in written:  # no half keystore: the first file goes if the second fails
            p.unlink(missing_ok=True)
        raise
    return store


def load_keystore(dir: Path | str, passphrase: str | None = None) -> Keystore:
    """Unlock the keystore in ``dir``; a one-line ConfigError naming the file otherwise."""
    path = Path(dir)
    account = _load_secp(path / SECP_FILE, passphrase)
    xkey = _load_x25519(path / X25519_FILE, passphrase)
    return Keystore(path, account, xkey)


# -- creation ---------------------------------------------------------------------------------

def _new_account() -> LocalAccount:
    while True:  # a 32-byte string is a valid key unless 0 or >= the group order (p ~ 2^-128)
        with contextlib.suppress(ValueError):
            account: LocalAccount = Account.from_key(secrets.token_bytes(32))
            return account


def _secp_doc(account: LocalAccount, passphrase: str | None, n: int) -> dict[str, Any]:
    if passphrase is None:
        return {"version": VERSION, "kind": "secp256k1", "address": account.address,
                "private_key": bytes(account.key).hex()}
    return dict(Account.encrypt(account.key, passphrase, kdf="scrypt", iterations=n))


def _x25519_doc(store: Keystore, passphrase: str | None, n: int) -> dict[str, Any]:
    secret = store.x25519.private_bytes_raw()
    doc: dict[str, Any] = {"version": VERSION, "kind": "x25519",
                           "public_key": store.x25519_public.hex()}
    if passphrase is None:
        doc["private_key"] = secret.hex()
        return doc
    salt, nonce = secrets.token_bytes(32), secrets.token_bytes(12)
    key = _scrypt(passphrase, salt, n, SCRYPT_R, SCRYPT_P)
    doc["crypto"] = {
        "kdf": "scrypt", "kdfparams": {"n": n, "r": SCRYPT_R, "p": SCRYPT_P, "dklen": 32,
                                       "salt": salt.hex()},
        "cipher": "aes-256-gcm", "nonce": nonce.hex(),
        "ciphertext": AESGCM(key).encrypt(nonce, secret, _AAD + store.x25519_public).hex(),
    }
    return doc


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def _write_new(path: Path, data: bytes) -> None:
    """Write ``path`` (0600) atomically; ConfigError if it exists, never overwriting it."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # whatever the umask
        try:
            os.link(tmp, path)  # atomic, and fails if the name exists
        except FileExistsError as e:
            raise ConfigError(f"keystore file {path} exists; refusing to overwrite it") from e
    finally:
        tmp.unlink(missing_ok=True)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# -- loading ----------------------------------------------------------------------------------

def _read_doc(path: Path, kind: str) -> dict[str, Any]:
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise ConfigError(f"keystore file {path} is missing (create it with "
                          f"`phalanx peer init --dir {path.parent}`)") from e
    if st.st_mode & 0o077:
        raise ConfigError(f"keystore file {path} is readable by others "
                          f"(mode {stat.S_IMODE(st.st_mode):o}); run chmod 600 on it")
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigError(f"keystore file {path} is corrupt: not JSON ({e})") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"keystore file {path} is corrupt: not a JSON object")
    if "crypto" not in doc and doc.get("kind") != kind:
        raise ConfigError(f"keystore file {path} is corrupt: not a {kind} keystore")
    return doc


def _corrupt(path: Path, what: str) -> ConfigError:
    return ConfigError(f"keystore file {path} is corrupt: {what}")


def _passphrase_for(path: Path, doc: dict[str, Any], passphrase: str | None) -> str | None:
    """The passphrase if the file is encrypted, None if not; ConfigError if they disagree."""
    encrypted = "crypto" in doc
    if encrypted and passphrase is None:
        raise ConfigError(f"keystore file {path} is encrypted; a passphrase is needed")
    if not encrypted and passphrase is not None:
        raise ConfigError(f"keystore file {path} is not encrypted, yet a passphrase was given")
    return passphrase


def _load_secp(path: Path, passphrase: str | None) -> LocalAccount:
    doc = _read_doc(path, "secp256k1")
    try:
        pw = _passphrase_for(path, doc, passphrase)
        if pw is not None:
            key = bytes(Account.decrypt(doc, pw))
        else:
            key = bytes.fromhex(str(doc["private_key"]))
        account: LocalAccount = Account.from_key(key)
    except ConfigError:
        raise
    except ValueError as e:
        if "MAC mismatch" in str(e):
            raise ConfigError(f"keystore file {path}: wrong passphrase") from e
        raise _corrupt(path, str(e).splitlines()[0] if str(e) else type(e).__name__) from e
    except (KeyError, TypeError) as e:
        raise _corrupt(path, f"missing or bad field {e}") from e
    claimed = str(doc.get("address", "")).lower().removeprefix("0x")
    if claimed != account.address.lower().removeprefix("0x"):
        raise _corrupt(path, f"the key is not that of address {doc.get('address')!r}")
    return account


def _load_x25519(path: Path, passphrase: str | None) -> X25519PrivateKey:
    doc = _read_doc(path, "x25519")
    try:
        public = bytes.fromhex(str(doc["public_key"]))
        pw = _passphrase_for(path, doc, passphrase)
        if pw is not None:
            secret = _open_x25519(doc["crypto"], pw, public)
        else:
            secret = bytes.fromhex(str(doc["private_key"]))
        key = X25519PrivateKey.from_private_bytes(secret)
    except InvalidTag as e:
        raise ConfigError(f"keystore file {path}: wrong passphrase (or a corrupt file)") from e
    except (KeyError, TypeError, ValueError) as e:
        raise _corrupt(path, f"missing or bad field {e}") from e
    if key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) != public:
        raise _corrupt(path, "the private key does not match public_key")
    return key


def _open_x25519(crypto: dict[str, Any], passphrase: str, public: bytes) -> bytes:
    if crypto["kdf"] != "scrypt" or crypto["cipher"] != "aes-256-gcm":
        raise ValueError(f"unknown kdf/cipher {crypto['kdf']}/{crypto['cipher']}")
    kp = crypto["kdfparams"]
    key = _scrypt(passphrase, bytes.fromhex(kp["salt"]), int(kp["n"]), int(kp["r"]),
                  int(kp["p"]))
    return AESGCM(key).decrypt(bytes.fromhex(crypto["nonce"]),
                               bytes.fromhex(crypto["ciphertext"]), _AAD + public)
