"""A proposer's steps in one round, from its own point of view (protocol.md §2–3.2).

``make_part1``: encode the prepared update with its witnesses, share it with fresh randomness
from the proposer's own secrets, seal each member's bundle to the X25519 key that member
registered on chain, and sign one upload per member; the root of the commitments is what the
proposer posts on chain before the deadline. ``make_part2``: only once coin1 is public, the
part-2 witnesses, shared and sealed the same way. The proposer keeps each envelope's ephemeral
for the round, to answer a dispute (§3.4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ConfigError, Reject
from phalanx.mpc.circuit import Circuit, ClientSecrets
from phalanx.mpc.coins import compute_root
from phalanx.mpc.committee_client import Observer, context_of, make_bundles, seal_bundles
from phalanx.mpc.messages import ShareBundle
from phalanx.mpc.parties import SecretSource
from phalanx.protocol.admission import require, verify_message
from phalanx.protocol.disputes import RevealedPart, decode_dispute, encode_reveal
from phalanx.protocol.identity import Identity
from phalanx.protocol.messages import Kind, Signed, make_signed
from phalanx.protocol.round import RoundView
from phalanx.protocol.uploads import Upload, encode_upload

SealTo = Callable[[bytes, bytes | memoryview, bytes, Observer | None], bytes | memoryview]
"""seal_to(recipient_public, payload, context, observe) → sealed (``net.envelope``); the sealer
draws the envelope's ephemeral from the sender's own secrets and remembers it for disputes."""
RevealOf = Callable[[bytes, bytes], "bytes | None"]
"""reveal(recipient_public, context) → the ephemeral secret of the envelope sealed under it."""


@dataclass(slots=True)
class ProposerState:
    """One proposer in one round."""

    me: Identity
    view: RoundView
    circuit: Circuit
    secrets: SecretSource
    seal_to: SealTo
    #: how it reveals an envelope's ephemeral in a dispute (None: it never answers one)
    reveal: RevealOf | None = None
    roots: dict[int, bytes] = field(default_factory=dict)
    kept: ClientSecrets | None = None
    #: part → (its commitments, each member's sealed bundle): kept for disputes (§3.4)
    sent: dict[int, tuple[tuple[bytes, ...], list[bytes]]] = field(default_factory=dict)
    #: seats whose envelopes it already revealed this round
    revealed: set[int] = field(default_factory=set)
    #: the prepared update it shared in part 1
    prepared: NDArray[np.float32] | None = None
    seen: set[bytes] = field(default_factory=set)


BundlesHook = Callable[[list[ShareBundle]], list[ShareBundle]]
"""A deviation's change to the bundles before they are sealed (``attacks.protocol``)."""


def share_part(state: ProposerState, part: int, items: dict[str, Any],
               tamper: BundlesHook | None = None) -> tuple[bytes, list[Signed]]:
    """Share a part's items with the proposer's own randomness, seal, commit and sign."""
    view, client = state.view, state.view.client(state.me.address)
    prg = state.secrets.prg(state.me.address, "sharing", part, view.session)
    bundles = make_bundles(client, part, items, m=view.m, t=view.t, prg=prg)
    if tamper is not None:
        bundles = tamper(bundles)

    def sealer(j: int, payload: bytes | memoryview, context: bytes,
               observe: Observer | None) -> bytes | memoryview:
        return state.seal_to(view.member_keys[j], payload, context, observe)

    sealed = seal_bundles(bundles, sealer, view.session)
    return send_part(state, part, tuple(sealed[j].commitment for j in range(view.m)),
                     [bytes(sealed[j].sealed) for j in range(view.m)])


def send_part(state: ProposerState, part: int, commitments: tuple[bytes, ...],
              sealed: list[bytes]) -> tuple[bytes, list[Signed]]:
    """Fix a part: its root, the envelopes kept for disputes, one signed upload per member."""
    view = state.view
    state.roots[part] = root = compute_root(commitments)
    state.sent[part] = (commitments, sealed)
    msgs = [make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.UPLOAD,
                        receiver=member, body=encode_upload(Upload(part, commitments, sealed[j])))
            for j, member in enumerate(view.committee)]
    return root, msgs


def make_part1(state: ProposerState,
               prepared: NDArray[np.float32]) -> tuple[bytes, list[Signed]]:
    """Part 1: the root to post on chain and one signed upload per member."""
    if 1 in state.roots:
        raise ConfigError("part 1 was already made this round (uploads are immutable)")
    prg = state.secrets.prg(state.me.address, "encoding", state.view.session)
    state.prepared = prepared
    state.kept = state.circuit.client_secrets(prepared, prg)
    return share_part(state, 1, part1_items(state.circuit, state.kept))


def part1_items(circuit: Circuit, kept: ClientSecrets) -> dict[str, Any]:
    """What part 1 shares: the scalars first (a member reads them before it streams the long
    vectors), then the circuit's vectors."""
    return {"s1": kept.scalars, **dict(zip(circuit.vector_labels, kept.vectors, strict=True))}


def make_part2(state: ProposerState, coin1: bytes) -> tuple[bytes, list[Signed]]:
    """Part 2, after the commitment deadline, from the public coin1."""
    if state.kept is None or 2 in state.roots:
        raise ConfigError("part 2 needs part 1 first, and is made once")
    response = state.circuit.client_response(state.kept, coin1)
    return share_part(state, 2, {"s2": response})


def process_dispute(state: ProposerState, msg: Signed) -> list[Signed]:
    """A member disputes its own share of this proposer's input (protocol.md §3.4): reveal
    that member's envelopes — re-sent, with their ephemerals — to every member, once per seat.
    Safe: either the member is honest (and the dispute is about this client's own sharing) or
    it is corrupt and already holds that bundle. A dispute naming another seat is refused:
    revealing an honest member's envelope would give the corrupt ones t + 1 shares."""
    view = state.view
    verify_message(msg, view, state.me.address, kinds={Kind.DISPUTE}, senders=view.committee,
                   seen=state.seen)
    client, seat = decode_dispute(msg.body, msg.header.sender)
    # Verify a member disputes its own share of this client, after both parts were sent
    require(client == view.client(state.me.address) and seat == view.seat(msg.header.sender),
            Reject.MALFORMED, msg.header.sender,
            f"dispute of client {client}, seat {seat}: a member disputes only its own share")
    require(1 in state.sent and 2 in state.sent, Reject.WRONG_PHASE, msg.header.sender,
            "dispute before both parts were sent")
    state.seen.add(msg.header.msg_id)
    seats = [seat]
    new = [j for j in seats if j not in state.revealed]
    if state.reveal is None or not new:
        return []
    client = view.client(state.me.address)
    parts: dict[int, tuple[RevealedPart, RevealedPart]] = {}
    for j in new:
        pair = []
        for part in (1, 2):
            commitments, sealed = state.sent[part]
            eph = state.reveal(view.member_keys[j], context_of(view.session, client, j, part))
            if eph is None:
                return []
            pair.append(RevealedPart(commitments, sealed[j], eph))
        parts[j] = (pair[0], pair[1])
        state.revealed.add(j)
    body = encode_reveal(parts)
    return [make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.REVEAL,
                        receiver=member, body=body) for member in view.committee]
