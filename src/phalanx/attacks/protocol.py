"""Misbehaviour at the message level: what a malicious committee member or proposer does with
its own signed messages (issue 9's attacks, run through the protocol code).

Each deviation rewrites messages the party itself signs (it holds its key, so re-signing is
within its power) or withholds an answer; nothing here reads another party's secrets.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from phalanx.errors import ConfigError
from phalanx.mpc.committee_client import commitment_of, tamper_share
from phalanx.mpc.field import P
from phalanx.mpc.shamir import seeded_servers
from phalanx.protocol.committee import CLAIM, MemberState, dispute_messages
from phalanx.protocol.messages import Kind, Signed, make_signed
from phalanx.protocol.openings import decode_opening, encode_opening
from phalanx.protocol.proposer import ProposerState, part1_items, send_part, share_part
from phalanx.protocol.uploads import Upload, decode_upload, encode_upload
from phalanx.rules.secure.fltrust import FLTrustCircuit
from phalanx.rules.secure.vector import NormCircuit


def first_bound_client(state: MemberState) -> int | None:
    """The victim of a targeted deviation: the first client this member holds."""
    held = [c for c in state.bound if c in state.local]
    return held[0] if held else None


def tamper_consistency(state: MemberState, msgs: list[Signed]) -> list[Signed]:
    """Add 1 to this member's consistency share of the first client it holds (to every other
    member), hoping to get an honest client excluded."""
    victim = first_bound_client(state)
    if victim is None:
        return msgs
    return [_rewrite(state, m, victim, lambda v: (v + 1) % P) for m in msgs]


def tamper_consistency_to(state: MemberState, msgs: list[Signed], seat: int) -> list[Signed]:
    """Equivocate: add 1 to its consistency share of the first client it holds in the message
    to member ``seat`` only (the others get the true share), hoping the honest members
    disagree on who cheated."""
    victim = first_bound_client(state)
    if victim is None:
        return msgs
    target = state.view.committee[seat]
    return [_rewrite(state, m, victim, lambda v: (v + 1) % P) if m.header.receiver == target
            else m for m in msgs]


def dispute_own_share(state: MemberState, msgs: list[Signed]) -> list[Signed]:
    """Also dispute its own (altered) share of the victim at once, so that the client must
    reveal this member's envelope — the tamperer's best defence (it gains no share it did
    not hold: the envelope is its own)."""
    victim = first_bound_client(state)
    if victim is None:
        return msgs
    return msgs + dispute_messages(state, victim)


def false_claim(state: MemberState, msgs: list[Signed]) -> list[Signed]:
    """Claim that the first client's upload does not open (it does), hoping to exclude it."""
    victim = first_bound_client(state)
    if victim is None:
        return msgs
    return [_rewrite(state, m, victim, None) for m in msgs]


def _rewrite(state: MemberState, msg: Signed, victim: int,
             change: Callable[[int], int] | None) -> Signed:
    if msg.header.kind is not Kind.OPENING:
        return msg
    kind, items = decode_opening(msg.body, msg.header.sender)
    if victim not in items:
        return msg
    if change is None:
        items[victim] = CLAIM
    else:
        vec = items[victim].copy()
        vec[0] = change(int(vec[0]))
        items[victim] = vec
    view = state.view
    return make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.OPENING,
                       receiver=msg.header.receiver, body=encode_opening(kind, items))


def garbage_to(state: ProposerState, seat: int) -> tuple[bytes, list[Signed]]:
    """A client's part 1 with committed random bytes as member ``seat``'s envelope (the hash
    matches, the envelope does not open): re-rooted and re-signed to every member."""
    commitments, sealed = state.sent[1]
    junk = state.secrets.prg(state.me.address, "junk", state.view.session).random_bytes(
        len(sealed[seat]))
    new = tuple(commitment_of(junk) if j == seat else c for j, c in enumerate(commitments))
    return send_part(state, 1, new, [junk if j == seat else s for j, s in enumerate(sealed)])


#: the client faults of ``rules.secure.ClientFault`` a proposer can run in its own part 1
CLIENT_FAULTS = ("non-binary-bits", "wrong-trust-weight", "bad-remainder",
                 "inconsistent-sharing", "wrap-around", "uncommitted-bundle", "garbage-bundle",
                 "short-vector", "resend-part1")


def faulty_part1(state: ProposerState, prepared: NDArray[np.float32],
                 fault: str) -> tuple[bytes, list[Signed]]:
    """A malicious client's part 1 with ``fault`` (the deviations the checks of protocol.md
    §3.2 and the disputes of §3.4 must catch), committed and signed like an honest one."""
    c, view = state.circuit, state.view
    prg = state.secrets.prg(state.me.address, "encoding", view.session)
    state.prepared = prepared
    if fault == "wrap-around":
        if not isinstance(c, NormCircuit):
            raise ConfigError(f"client_fault={fault!r} needs a rule on real vectors")
        kept = c.witness(c.wrap_around(c.encode(prepared, prg)), prg)
    else:
        kept = c.client_secrets(prepared, prg)
    if fault == "non-binary-bits":
        kept = c.non_binary(kept)  # type: ignore[attr-defined]
    elif fault in ("wrong-trust-weight", "bad-remainder"):
        if not isinstance(c, FLTrustCircuit):
            raise ConfigError(f"client_fault={fault!r} applies to fltrust only")
        w_delta, r_delta = (1, 0) if fault == "wrong-trust-weight" else (-1, c.gp)
        kept = c.tamper_weight(kept, w_delta=w_delta, r_delta=r_delta)
    state.kept = kept
    items = part1_items(c, kept)
    if fault == "short-vector":
        first = c.vector_labels[0]
        items[first] = items[first][:-1]
    target = next(j for j in range(view.m)
                  if j not in seeded_servers(view.m, view.t, view.client(state.me.address)))
    hook = ((lambda bundles: tamper_share(bundles, target, 0))
            if fault == "inconsistent-sharing" else None)
    root, msgs = share_part(state, 1, items, hook)
    if fault == "garbage-bundle":
        return garbage_to(state, target)
    if fault == "uncommitted-bundle":  # the committed root stands; one envelope differs
        msgs = [_flip_sealed(state, m) if m.header.receiver == view.committee[target] else m
                for m in msgs]
    return root, msgs


def _flip_sealed(state: ProposerState, msg: Signed) -> Signed:
    up = decode_upload(msg.body, msg.header.sender)
    sealed = bytes([up.sealed[0] ^ 1]) + bytes(up.sealed[1:])
    view = state.view
    return make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.UPLOAD,
                       receiver=msg.header.receiver,
                       body=encode_upload(Upload(1, up.commitments, sealed, up.blob)))


def resend_part1(state: ProposerState) -> list[Signed]:
    """After coin1: a wrap-around part 1 with fresh commitments, in place of the committed one
    (members keep the first upload: they refuse this one as a duplicate and name its sender)."""
    assert state.prepared is not None
    fresh = ProposerState(state.me, state.view, state.circuit, state.secrets, state.seal_to)
    return faulty_part1(fresh, state.prepared, "wrap-around")[1]


def garbage(state: ProposerState, part: int) -> tuple[bytes, list[Signed]]:
    """A broken client's part: random bytes to every member, committed to (the hash matches,
    nothing opens)."""
    prg = state.secrets.prg(state.me.address, "garbage", part, state.view.session)
    sealed = [prg.random_bytes(256) for _ in state.view.committee]
    return send_part(state, part, tuple(commitment_of(s) for s in sealed), sealed)


def withhold_przs(state: MemberState, msgs: list[Signed], seat: int) -> list[Signed]:
    """Deal this member's PRZS keys to every member but ``seat`` (whose masks would then not
    line up with the others', were the key sets not left out by all)."""
    target = state.view.committee[seat]
    return [m for m in msgs if not (m.header.kind is Kind.PRZS_KEY
                                    and m.header.receiver == target)]


def dispute_only_to(state: MemberState, msgs: list[Signed], seat: int) -> list[Signed]:
    """Dispute its own share of the victim, telling only the proposer and member ``seat`` (the
    others would think it never asked, and blame it where ``seat`` blames the client)."""
    victim = first_bound_client(state)
    if victim is None:
        return msgs
    keep = {state.view.proposers[victim], state.view.committee[seat]}
    return msgs + [m for m in dispute_messages(state, victim) if m.header.receiver in keep]


def reveal_only_to(state: ProposerState, msgs: list[Signed], seat: int) -> list[Signed]:
    """As a proposer, send its REVEAL to member ``seat`` only (the others would blame it at the
    dispute deadline where ``seat`` judges the disputed member)."""
    target = state.view.committee[seat]
    return [m for m in msgs if not (m.header.kind is Kind.REVEAL
                                    and m.header.receiver != target)]


def tamper_final_to(state: MemberState, msgs: list[Signed], seat: int) -> list[Signed]:
    """Equivocate in the final opening: add 1 to its first share of the aggregate in the
    message to member ``seat`` only (the others get the true shares)."""
    target = state.view.committee[seat]
    out = []
    for m in msgs:
        if m.header.kind is Kind.OPENING and m.header.receiver == target:
            kind, items = decode_opening(m.body, m.header.sender)
            if kind.name not in ("CONSISTENCY", "CHECKS") and items:
                first = min(items)
                vec = items[first].copy()
                vec[0] = (int(vec[0]) + 1) % P
                items[first] = vec
                view = state.view
                m = make_signed(state.me, task=view.task, rnd=view.round, kind=Kind.OPENING,
                                receiver=target, body=encode_opening(kind, items))
        out.append(m)
    return out


#: ``--server-attack`` as a member's own deviation (a ``protocol.peer.Behaviour`` field)
SERVER_DEVIATIONS = {"tamper": "tamper_consistency", "false-claim": "false_claim",
                     "silent": "silent"}


def corrupt_seats(seed: int, rnd: int, m: int, k: int) -> list[int]:
    """The committee seats that run ``--server-attack`` in round ``rnd`` (a seeded choice of
    the experiment, public: every simulated or real peer computes the same seats)."""
    rng = np.random.default_rng([seed, rnd, 11])
    return sorted(int(j) for j in rng.choice(m, k, replace=False))
