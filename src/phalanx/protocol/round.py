"""The public facts of one round, as every peer reads them from the chain (protocol.md §4).

A :class:`RoundView` is what a peer knows before it acts: the task (the contract's address),
the round, the beacon, the roles in seat order and the elected members' registered X25519 keys.
Committee seat j is MPC server j. ``session`` binds every envelope to task and round.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from phalanx.errors import ConfigError
from phalanx.mpc.shamir import validate_committee


@dataclass(frozen=True, slots=True)
class RoundView:
    """Task, round, beacon, roles and the members' sealing keys of one round."""

    task: str
    round: int
    beacon: bytes
    committee: tuple[str, ...]
    proposers: tuple[str, ...]
    voters: tuple[str, ...]
    member_keys: tuple[bytes, ...]
    t: int

    def __post_init__(self) -> None:
        validate_committee(len(self.committee), self.t)
        if len(self.member_keys) != len(self.committee):
            raise ConfigError(f"member_keys has {len(self.member_keys)} keys for "
                              f"{len(self.committee)} members")
        roles = (*self.committee, *self.proposers, *self.voters)
        if len(set(roles)) != len(roles):
            raise ConfigError("roles must be disjoint (committee, proposers, voters)")

    @property
    def m(self) -> int:
        return len(self.committee)

    @property
    def session(self) -> bytes:
        """What every envelope of this round binds: task and round."""
        return hashlib.sha256(b"phalanx/session/v1" + self.task.encode()
                              + self.round.to_bytes(8, "big")).digest()

    def seat(self, member: str) -> int:
        """The MPC server index of a committee member."""
        return self.committee.index(member)

    def client(self, proposer: str) -> int:
        """The client index of a proposer (its seat among the proposers)."""
        return self.proposers.index(proposer)
