"""What a peer reads from the chain to act in a round (protocol.md §4): the round's view,
and the roots the proposers posted. Read-only calls on a ``chain.ledger.Ledger``; the same
functions serve the simulator and a real peer's chain follower.
"""

from __future__ import annotations

from collections.abc import Callable

from phalanx.chain.ledger import Ledger
from phalanx.chain.model import EMPTY
from phalanx.protocol.round import RoundView


def read_view(ledger: Ledger) -> RoundView:
    """Task, round, beacon, roles in seat order and the members' registered X25519 keys."""
    roles = ledger.get_roles()
    state = ledger.get_round_state()
    keys = tuple(ledger.get_x25519(a) for a in roles.committee)
    return RoundView(ledger.address, roles.round, state.seed, roles.committee, roles.proposers,
                     roles.voters, keys, ledger.params.threshold)


def read_roots(ledger: Ledger, view: RoundView) -> dict[str, bytes]:
    """proposer → the part-1 root it posted this round (proposers that posted none left out)."""
    return _posted(ledger.get_bundle, view)


def read_responses(ledger: Ledger, view: RoundView) -> dict[str, bytes]:
    """proposer → the part-2 root it posted this round in the response window (none: left out)."""
    return _posted(ledger.get_response, view)


def _posted(get: Callable[[int, str], bytes], view: RoundView) -> dict[str, bytes]:
    out = {}
    for p in view.proposers:
        root = get(view.round, p)
        if root and root != EMPTY:
            out[p] = root
    return out
