"""What one protocol step asks its peer to do: messages to send, chain transactions to make,
blobs to publish (architecture.md: ``protocol`` decides what, ``sim``/``node`` decide how).

Transactions are typed values; the driver maps each to one ``chain.ledger.Ledger`` call with
the peer's own account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount

from phalanx.chain.ledger import Attestation, Ledger
from phalanx.protocol.messages import Signed


@dataclass(frozen=True, slots=True)
class CommitBeacon:
    secret: bytes


@dataclass(frozen=True, slots=True)
class RevealBeacon:
    secret: bytes


@dataclass(frozen=True, slots=True)
class CloseBeacon:
    pass


@dataclass(frozen=True, slots=True)
class PostBundle:
    """A proposer's part-1 root (the hash of its commitments), before the deadline."""

    root: bytes


@dataclass(frozen=True, slots=True)
class PostResponse:
    """A proposer's part-2 root, after coin1 and before the response deadline."""

    root: bytes


@dataclass(frozen=True, slots=True)
class Attest:
    attestation: Attestation


@dataclass(frozen=True, slots=True)
class CommitVote:
    accept: bool
    salt: bytes


@dataclass(frozen=True, slots=True)
class RevealVote:
    accept: bool
    salt: bytes


@dataclass(frozen=True, slots=True)
class Settle:
    pass


Tx = (CommitBeacon | RevealBeacon | CloseBeacon | PostBundle | PostResponse | Attest
      | CommitVote | RevealVote | Settle)


def submit(ledger: Ledger, account: LocalAccount, t: Tx) -> Any:
    """Send one transaction with the peer's own account: the one mapping of a ``Tx`` to its
    ledger call, which the simulator and the node share. Returns what the call returns (a
    ``Settlement`` for ``Settle``)."""
    if isinstance(t, CommitBeacon):
        return ledger.commit_beacon(account, t.secret)
    if isinstance(t, RevealBeacon):
        return ledger.reveal_beacon(account, t.secret)
    if isinstance(t, CloseBeacon):
        return ledger.close_beacon(account)
    if isinstance(t, PostBundle):
        return ledger.post_bundle(account, t.root)
    if isinstance(t, PostResponse):
        return ledger.post_response(account, t.root)
    if isinstance(t, Attest):
        return ledger.attest(account, t.attestation)
    if isinstance(t, CommitVote):
        return ledger.commit_vote(account, t.accept, t.salt)
    if isinstance(t, RevealVote):
        return ledger.reveal_vote(account, t.accept, t.salt)
    if isinstance(t, Settle):
        return ledger.settle(account)
    raise TypeError(f"transaction: unexpected {t!r}")


@dataclass(slots=True)
class Actions:
    """The output of one step."""

    messages: list[Signed] = field(default_factory=list)
    txs: list[Tx] = field(default_factory=list)
    #: content address → bytes this peer now serves (models, candidates)
    blobs: dict[bytes, bytes] = field(default_factory=dict)
    #: readable facts for the peer's log and the run's report
    notes: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: Actions) -> Actions:
        self.messages += other.messages
        self.txs += other.txs
        self.blobs.update(other.blobs)
        self.notes += other.notes
        return self
