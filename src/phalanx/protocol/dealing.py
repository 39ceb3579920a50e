"""Wire forms of the dealt zero sharings in the per-peer protocol (``mpc.dealt``; issue 13).

- ``ZERO_DEAL`` (dealer → member, before the pass): per label of the round, in the order the
  round fixes, the dealer's m public commitments (32 B each) ‖ length (4 B) ‖ the payload
  sealed to the receiver.
- ``ZERO_REVEAL`` (member → members, after a failed check): per failed dealer, its seat (2 B)
  ‖ length (4 B) ‖ the dealer's signed ``ZERO_DEAL`` to this member (empty from the dealer
  itself) ‖ per label: length (4 B) ‖ the plaintext payload it opened.
Both decode exactly (trailing or missing bytes, wrong counts: MALFORMED).
"""

from __future__ import annotations

from dataclasses import dataclass

from phalanx.errors import ProtocolViolation, Reject

COMMIT_BYTES = 32


@dataclass(frozen=True, slots=True)
class DealPart:
    """One label's part of a ZERO_DEAL: the dealer's commitments and the sealed payload."""

    commitments: tuple[bytes, ...]
    sealed: bytes


def encode_deal(parts: list[DealPart]) -> bytes:
    """The body of one ZERO_DEAL."""
    out = [len(parts).to_bytes(2, "big")]
    for p in parts:
        out += [*p.commitments, len(p.sealed).to_bytes(4, "big"), p.sealed]
    return b"".join(out)


class _Reader:
    def __init__(self, body: bytes, sender: str) -> None:
        self.body, self.pos, self.sender = body, 0, sender

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.body):
            raise ProtocolViolation(Reject.MALFORMED, self.sender,
                                    f"body of {len(self.body)} B is short")
        got = self.body[self.pos:self.pos + n]
        self.pos += n
        return got

    def number(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def end(self) -> None:
        if self.pos != len(self.body):
            raise ProtocolViolation(Reject.MALFORMED, self.sender, "trailing bytes")


def decode_deal(body: bytes, sender: str, *, m: int, labels: int) -> list[DealPart]:
    """Parse a ZERO_DEAL for a committee of ``m`` and ``labels`` labels, exactly."""
    r = _Reader(body, sender)
    count = r.number(2)
    if count != labels:
        raise ProtocolViolation(Reject.MALFORMED, sender, f"{count} dealt labels, expected "
                                f"{labels}")
    parts = []
    for _ in range(count):
        commits = tuple(r.take(COMMIT_BYTES) for _ in range(m))
        parts.append(DealPart(commits, r.take(r.number(4))))
    r.end()
    return parts


@dataclass(frozen=True, slots=True)
class Revealed:
    """One member's reveal of one dealer's payloads: the dealer's signed ZERO_DEAL to it (its
    wire form; empty when the member is the dealer) and the plaintext payload per label."""

    dealer: int
    deal: bytes
    payloads: tuple[bytes, ...]


def encode_reveal(items: list[Revealed]) -> bytes:
    """The body of one ZERO_REVEAL."""
    out = [len(items).to_bytes(2, "big")]
    for it in items:
        out += [it.dealer.to_bytes(2, "big"), len(it.deal).to_bytes(4, "big"), it.deal]
        for p in it.payloads:
            out += [len(p).to_bytes(4, "big"), p]
    return b"".join(out)


def decode_reveal(body: bytes, sender: str, *, m: int, labels: int) -> list[Revealed]:
    """Parse a ZERO_REVEAL exactly: at most m dealers, each once, ``labels`` payloads each."""
    r = _Reader(body, sender)
    count = r.number(2)
    if count > m:
        raise ProtocolViolation(Reject.MALFORMED, sender, f"{count} dealers, at most {m}")
    out: list[Revealed] = []
    for _ in range(count):
        dealer = r.number(2)
        if dealer >= m or any(x.dealer == dealer for x in out):
            raise ProtocolViolation(Reject.MALFORMED, sender, f"dealer {dealer} revealed "
                                    "twice or out of range")
        deal = r.take(r.number(4))
        out.append(Revealed(dealer, deal, tuple(r.take(r.number(4)) for _ in range(labels))))
    r.end()
    return out
