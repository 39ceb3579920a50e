"""Sealed envelopes: X25519 + HKDF-SHA256 + an AEAD (protocol.md §2).

``seal`` encrypts a payload to a recipient's X25519 public key with an ephemeral key pair (ECIES
style): the shared secret goes through HKDF-SHA256 (salt = ephemeral ‖ recipient public keys,
info = the AEAD's name and a context label) to a 256-bit AEAD key; the nonce can be fixed
because every key is used once. Wire form: ephemeral public key (32 bytes) ‖ ciphertext ‖ tag
(16 bytes). The AEAD is AES-256-GCM by default (with AES-NI/VAES it opens a 7.6 MB bundle 2.5×
faster than ChaCha20-Poly1305 here: docs/decisions.md); ``aead="chacha20-poly1305"``, the
cipher protocol.md names, is kept for machines without AES instructions.
The ephemeral secret is passed in (32 bytes): production draws a fresh one from the OS for
every envelope (``os_ephemeral``); only tests and explicitly reproducible simulations derive it
(from a seed, the context — which binds task, round, sender, receiver and part — and the
payload's hash, so that no key is ever used for two plaintexts). The zero nonce is safe because
each key seals one envelope.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from phalanx.errors import ConfigError, PhalanxError

_NONCE = b"\x00" * 12
_INFO = b"phalanx/envelope/v1"
AEADS: dict[str, type[AESGCM] | type[ChaCha20Poly1305]] = {
    "aes-256-gcm": AESGCM, "chacha20-poly1305": ChaCha20Poly1305,
}
DEFAULT_AEAD = "aes-256-gcm"


class EnvelopeError(PhalanxError):
    """A sealed envelope failed to open (wrong key, tampered or truncated)."""


def private_key(secret: bytes) -> X25519PrivateKey:
    """An X25519 private key from 32 secret bytes."""
    if len(secret) != 32:
        raise ConfigError(f"X25519 secret has {len(secret)} bytes, expected 32")
    return X25519PrivateKey.from_private_bytes(secret)


def public_bytes(key: X25519PublicKey) -> bytes:
    """The 32-byte raw encoding of a public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def check_aead(aead: str) -> str:
    """The AEAD name, validated (ConfigError naming the parameter otherwise)."""
    if aead not in AEADS:
        raise ConfigError(f"aead={aead!r} must be one of {sorted(AEADS)}")
    return aead


def _key(shared: bytes, eph_pub: bytes, rcpt_pub: bytes, context: bytes, aead: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_pub + rcpt_pub,
                info=_INFO + b"/" + aead.encode() + b"/" + context).derive(shared)


def _opening_key(sealed: memoryview, recipient: X25519PrivateKey, context: bytes,
                 aead: str) -> bytes:
    """The AEAD key of an envelope as its recipient derives it (length checked first);
    EnvelopeError when the envelope is too short or its ephemeral key is unusable."""
    check_aead(aead)
    if len(sealed) < 48:
        raise EnvelopeError(f"sealed envelope of {len(sealed)} bytes is too short")
    eph_pub = bytes(sealed[:32])
    try:
        shared = recipient.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    except ValueError as e:
        raise EnvelopeError("envelope does not authenticate") from e
    return _key(shared, eph_pub, public_bytes(recipient.public_key()), context, aead)


Observer = Callable[[memoryview], object]
"""Called on consecutive pieces that together are exactly the sealed envelope, each while it is
hot in cache (``seal``: as it is written; ``SealedReader``: just before it is decrypted), so
a caller can hash the envelope in the same pass (the bundle commitment)."""
_CHUNK = 256 << 10  # bytes per piece: hashing then decrypting it reads it from L2


def _ignore(piece: memoryview) -> None:
    """The observer when nobody observes."""


def seal(payload: bytes | memoryview, recipient: X25519PublicKey, ephemeral: bytes,
         context: bytes = b"", *, aead: str = DEFAULT_AEAD,
         observe: Observer | None = None) -> bytes | memoryview:
    """Encrypt ``payload`` to ``recipient``; ``context`` is bound as associated data."""
    eph = private_key(ephemeral)
    eph_pub = public_bytes(eph.public_key())
    key = _key(eph.exchange(recipient), eph_pub, public_bytes(recipient), context,
               check_aead(aead))
    if aead != "aes-256-gcm":
        sealed = eph_pub + AEADS[aead](key).encrypt(_NONCE, payload, context)
        if observe is not None:
            observe(memoryview(sealed))
        return sealed
    # encrypt straight into the envelope (one allocation: the concatenation of a fresh
    # ciphertext cost two more 7.6 MB allocations and copies per bundle)
    n = len(payload)
    # a bytearray, not a numpy array: numpy madvises large buffers for huge pages, and with
    # THP defrag=madvise (this VM) faulting those in stalls on compaction once memory fills
    view = memoryview(bytearray(32 + n + 16))
    view[:32] = eph_pub
    enc = Cipher(algorithms.AES(key), modes.GCM(_NONCE)).encryptor()
    enc.authenticate_additional_data(context)
    see = observe if observe is not None else _ignore
    see(view[:32])
    body = memoryview(payload)
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        enc.update_into(body[lo:hi], view[32 + lo:])
        see(view[32 + lo:32 + hi])
    enc.finalize()
    view[32 + n:] = enc.tag
    see(view[32 + n:])
    return view


def open_sealed(sealed: bytes | bytearray | memoryview, recipient: X25519PrivateKey,
                context: bytes = b"", *, aead: str = DEFAULT_AEAD) -> bytes:
    """Decrypt a :func:`seal` envelope; EnvelopeError when it does not authenticate."""
    view = memoryview(sealed)
    key = _opening_key(view, recipient, context, aead)
    try:
        return AEADS[aead](key).decrypt(_NONCE, view[32:], context)
    except (InvalidTag, ValueError) as e:
        raise EnvelopeError("envelope does not authenticate") from e


class SealedReader:
    """An envelope opened piece by piece: ``read_into`` decrypts the next bytes of the payload
    (a server runs its pass over each piece while it is in cache), ``verify`` then checks the
    tag. Nothing read may be trusted, or kept, before ``verify`` returns; a caller that used
    the pieces tentatively must undo that when it raises (the committee does: it replays the
    same bytes). ``observe`` sees the envelope's pieces in order, each just before it is
    decrypted. ``key``: the AEAD key, when the caller derived it (from a revealed ephemeral)
    instead of the recipient's private key.
    AEADs without a streaming interface are decrypted (and authenticated) whole up front."""

    def __init__(self, sealed: bytes | bytearray | memoryview,
                 recipient: X25519PrivateKey | None, context: bytes, *,
                 aead: str = DEFAULT_AEAD, observe: Observer | None = None,
                 key: bytes | None = None) -> None:
        view = memoryview(sealed)
        self._see = observe if observe is not None else _ignore
        self._pos = 0
        self._plain: bytes | None = None
        check_aead(aead)
        if len(view) < 48:
            raise EnvelopeError(f"sealed envelope of {len(view)} bytes is too short")
        if key is None:
            if recipient is None:
                raise ConfigError("SealedReader needs a recipient key or an AEAD key")
            key = _opening_key(view, recipient, context, aead)
        if aead != "aes-256-gcm":  # no streaming interface: decrypt (and authenticate) now
            try:
                self._plain = AEADS[aead](key).decrypt(_NONCE, view[32:], context)
            except (InvalidTag, ValueError) as e:
                raise EnvelopeError("envelope does not authenticate") from e
            self.size = len(self._plain)
            self._see(view)
            return
        self.size = len(view) - 48
        self._tail = view[-16:]
        self._dec = Cipher(algorithms.AES(key), modes.GCM(_NONCE, bytes(self._tail))).decryptor()
        self._dec.authenticate_additional_data(context)
        self._see(view[:32])
        self._body = view[32:-16]

    def read_into(self, out: memoryview, n: int) -> memoryview:
        """The next n payload bytes, decrypted into ``out`` (which needs n + 15 bytes: the
        cipher's block slack); a view of ``out[:n]``."""
        if n < 0 or self._pos + n > self.size:
            raise EnvelopeError(f"read of {n} bytes at {self._pos} of a {self.size}-byte payload")
        if len(out) < n + 15:
            raise ConfigError(f"output buffer of {len(out)} bytes, needs {n + 15}")
        lo, self._pos = self._pos, self._pos + n
        if self._plain is not None:
            out[:n] = self._plain[lo:lo + n]
            return out[:n]
        for a in range(lo, lo + n, _CHUNK):
            piece = self._body[a:min(lo + n, a + _CHUNK)]
            self._see(piece)
            self._dec.update_into(piece, out[a - lo:])
        return out[:n]

    def verify(self) -> None:
        """Check the tag once the whole payload was read; EnvelopeError when it does not
        authenticate (or was not read to its end)."""
        if self._pos != self.size:
            raise EnvelopeError(f"payload read to {self._pos} of {self.size} bytes")
        if self._plain is not None:
            return
        self._see(self._tail)
        try:
            self._dec.finalize()
        except (InvalidTag, ValueError) as e:
            raise EnvelopeError("envelope does not authenticate") from e


Ephemerals = Callable[[bytes, bytes | memoryview], bytes]
"""ephemeral(context, payload) → 32 secret bytes for one envelope (the sender's own source)."""


def os_ephemeral(context: bytes, payload: bytes | memoryview) -> bytes:
    """A fresh ephemeral secret from the OS for every envelope (production)."""
    return os.urandom(32)


def revealed_key(sealed: bytes | memoryview, ephemeral: bytes, recipient: bytes,
                 context: bytes, aead: str = DEFAULT_AEAD) -> bytes:
    """The AEAD key of an envelope, from the ephemeral secret its sender reveals in a dispute
    (protocol.md §3.4) and the recipient's public key: anyone can then open that one envelope.
    EnvelopeError when the secret is not the envelope's."""
    view = memoryview(sealed)
    if len(view) < 48:
        raise EnvelopeError(f"sealed envelope of {len(view)} bytes is too short")
    eph = private_key(ephemeral)
    eph_pub = public_bytes(eph.public_key())
    if eph_pub != bytes(view[:32]):
        raise EnvelopeError("the revealed ephemeral is not this envelope's")
    rcpt = X25519PublicKey.from_public_bytes(recipient)
    return _key(eph.exchange(rcpt), eph_pub, recipient, context, check_aead(aead))


class Sender:
    """One party's sealing to registered public keys: a fresh ephemeral per envelope (from
    ``ephemeral``, the OS by default), kept for the round so that the party can reveal it in
    a dispute (protocol.md §3.4)."""

    def __init__(self, ephemeral: Ephemerals | None = None, *,
                 aead: str = DEFAULT_AEAD) -> None:
        self.aead = check_aead(aead)
        self._ephemeral = ephemeral or os_ephemeral
        self._sent: dict[tuple[bytes, bytes], bytes] = {}
        self._lock = threading.Lock()  # clients may seal from several threads

    def seal_to(self, recipient: bytes, payload: bytes | memoryview, context: bytes,
                observe: Observer | None = None) -> bytes | memoryview:
        """Seal ``payload`` to the X25519 public key ``recipient``, binding ``context``."""
        eph = self._ephemeral(context, payload)
        with self._lock:
            self._sent[(recipient, context)] = eph
        return seal(payload, X25519PublicKey.from_public_bytes(recipient), eph, context,
                    aead=self.aead, observe=observe)

    def reveal(self, recipient: bytes, context: bytes) -> bytes | None:
        """The ephemeral of the envelope sealed to ``recipient`` under ``context``."""
        return self._sent.get((recipient, context))


class X25519Envelope:
    """Seals to m servers, each with its own X25519 secret (drawn by that server).

    Implements the ``Envelope`` interface of ``phalanx.rules.secure`` (``seal``/``open_stream``
    by server index): the clients' side is one :class:`Sender` (a fresh ephemeral per envelope,
    default the OS, kept so that in a dispute it can be revealed), the servers' side their
    private keys; ``open_revealed`` opens one envelope with a revealed ephemeral.
    """

    def __init__(self, server_secrets: Sequence[bytes], ephemeral: Ephemerals | None = None,
                 *, aead: str = DEFAULT_AEAD) -> None:
        self.aead = check_aead(aead)
        self._keys = [private_key(sk) for sk in server_secrets]
        self.public = [public_bytes(k.public_key()) for k in self._keys]
        self.sender = Sender(ephemeral, aead=aead)

    def seal(self, server: int, payload: bytes | memoryview, context: bytes,
             observe: Observer | None = None) -> bytes | memoryview:
        """Seal ``payload`` to server ``server``, binding ``context``."""
        return self.sender.seal_to(self.public[server], payload, context, observe)

    def reveal(self, server: int, context: bytes) -> bytes | None:
        """The ephemeral secret of the envelope sealed to ``server`` under ``context``."""
        return self.sender.reveal(self.public[server], context)

    def open(self, server: int, sealed: bytes | bytearray | memoryview, context: bytes) -> bytes:
        """Open an envelope as server ``server``."""
        return open_sealed(sealed, self._keys[server], context, aead=self.aead)

    def open_stream(self, server: int, sealed: bytes | bytearray | memoryview, context: bytes,
                    observe: Observer | None = None) -> SealedReader:
        """Open an envelope as server ``server`` piece by piece (see :class:`SealedReader`)."""
        return SealedReader(sealed, self._keys[server], context, aead=self.aead,
                            observe=observe)

    def open_revealed(self, server: int, sealed: bytes | memoryview, context: bytes,
                      observe: Observer | None = None, *, ephemeral: bytes) -> SealedReader:
        """Open an envelope to ``server`` with its revealed ephemeral (no private key)."""
        key = revealed_key(sealed, ephemeral, self.public[server], context, self.aead)
        return SealedReader(sealed, None, context, aead=self.aead, observe=observe, key=key)


def revealed_opener(ephemeral: bytes, recipient: bytes, *, aead: str = DEFAULT_AEAD) -> Callable[
        [bytes | memoryview, bytes, Observer | None], SealedReader]:
    """How anyone opens an envelope sealed to ``recipient`` (public key) from the ephemeral
    secret its sender revealed in a dispute (protocol.md §3.4)."""

    def opener(sealed: bytes | memoryview, context: bytes,
               observe: Observer | None) -> SealedReader:
        key = revealed_key(sealed, ephemeral, recipient, context, aead)
        return SealedReader(sealed, None, context, aead=aead, observe=observe, key=key)

    return opener


def x25519_envelope(server_secrets: Sequence[bytes],
                    ephemeral: Ephemerals | None = None) -> X25519Envelope:
    """The factory the secure backend takes: real sealing, each server its own key."""
    return X25519Envelope(server_secrets, ephemeral)


def opener_of(secret: bytes, *, aead: str = DEFAULT_AEAD) -> Callable[
        [bytes | memoryview, bytes, Observer | None], SealedReader]:
    """How the holder of X25519 ``secret`` opens envelopes addressed to it, piece by piece."""
    key = private_key(secret)

    def opener(sealed: bytes | memoryview, context: bytes,
               observe: Observer | None) -> SealedReader:
        return SealedReader(sealed, key, context, aead=aead, observe=observe)

    return opener
