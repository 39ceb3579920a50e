"""The per-party protocol steps (protocol/): proposers' signed uploads into member-owned MPC
servers, bound to the chain's roots, coins from fixed data only — the honest path to the
right aggregate, and each way to cheat a step (style.md §4, §8)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

from phalanx.errors import ProtocolViolation, Reject
from phalanx.mpc.messages import OpeningKind
from phalanx.mpc.parties import SeededSecrets
from phalanx.mpc.server import Server
from phalanx.net.envelope import Sender, opener_of
from phalanx.protocol.committee import (
    CommitDeadline,
    MemberState,
    ResponseDeadline,
    process_commit_deadline,
    process_response_deadline,
    process_upload,
)
from phalanx.protocol.identity import Identity
from phalanx.protocol.messages import Kind, Signed, decode, encode, make_signed
from phalanx.protocol.proposer import ProposerState, make_part1, make_part2
from phalanx.protocol.round import RoundView
from phalanx.protocol.uploads import Upload, decode_upload, encode_upload
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.secure import SecureParams, make_circuit
from phalanx.rules.secure.parties import OsSecrets

D, M, T, N = 300, 5, 1, 3
TASK = "0x" + "ab" * 20
IDS = SeededSecrets(b"I" * 32)  # reproducible identities for the test; party secrets: the OS


@dataclass
class World:
    view: RoundView
    members: list[MemberState]
    proposers: list[ProposerState]
    voter: Identity
    prepared: list[np.ndarray]
    rule: object
    ctx: RuleContext


def _world(rnd: int = 3, withhold: tuple[int, int] | None = None) -> World:
    """``withhold``: (dealer, receiver) of PRZS keys that never arrive."""
    members = [Identity.from_source(IDS, f"member{j}") for j in range(M)]
    props = [Identity.from_source(IDS, f"proposer{i}") for i in range(N)]
    voter = Identity.from_source(IDS, "voter")
    view = RoundView(TASK, rnd, b"beacon" * 5 + b"xy", tuple(p.address for p in members),
                     tuple(p.address for p in props), (voter.address,),
                     tuple(p.x25519_public for p in members), T)
    rng = np.random.default_rng(5)
    rule = make_rule("fltrust")
    ctx = RuleContext(dim=D, reference=rng.standard_normal(D).astype(np.float32))
    prepared = [rule.prepare(rng.standard_normal(D).astype(np.float32), ctx) for _ in range(N)]
    params = SecureParams(m=M, t=T)
    states = []
    for j, me in enumerate(members):
        sender = Sender()
        server = Server(j, make_circuit(rule, ctx, params, N), m=M, t=T, session=view.session,
                        secrets=OsSecrets(), party=me.address,
                        sealer=lambda r, p, c, o, s=sender: s.seal_to(view.member_keys[r], p, c, o),
                        opener=opener_of(me.x25519_secret))
        states.append(MemberState(me, view, server))
    for s in states:  # PRZS keys, member to member
        for r, sealed in s.server.deal_przs():
            if (s.server.j, r) != withhold:
                states[r].server.receive_przs(s.server.j, sealed)
    proposers = [ProposerState(p, view, make_circuit(rule, ctx, params, N), OsSecrets(),
                               Sender().seal_to) for p in props]
    return World(view, states, proposers, voter, prepared, rule, ctx)


def _wire(msg: Signed) -> Signed:
    return decode(encode(msg), msg.header.sender)


def _deliver(w: World, msgs: list[Signed]) -> None:
    for msg in msgs:
        process_upload(w.members[w.view.seat(msg.header.receiver)], _wire(msg))


def _part1(w: World) -> dict[str, bytes]:
    roots = {}
    for p, x in zip(w.proposers, w.prepared, strict=True):
        root, msgs = make_part1(p, x)
        roots[p.me.address] = root
        _deliver(w, msgs)
    return roots


def _part2(w: World, coin1: bytes) -> dict[str, bytes]:
    roots = {}
    for p in w.proposers:
        root, msgs = make_part2(p, coin1)
        roots[p.me.address] = root
        _deliver(w, msgs)
    return roots


def _finish(w: World) -> np.ndarray:
    """The MPC after the coins, each member's server on its own (openings by hand)."""
    servers = [s.server for s in w.members]
    locals_ = [s.local_batch(list(range(N))) for s in servers]
    for c in range(N):
        views = {j: Server.consistency_share(locals_[j][c][1]) for j in range(M)}
        for s in servers:
            assert s.decode(views, T).bad == ()
        checks = {j: servers[j].check_share(c, locals_[j][c][1]) for j in range(M)}
        assert not servers[0].decode(checks, 2 * T).value.any()
    finals = [s.final_shares() for s in servers]
    opened = {}
    for k, first in enumerate(finals[0]):
        opened[first.kind] = servers[1].decode({j: finals[j][k].values for j in range(M)},
                                               2 * T if first.degree_2t else T).value
    vector, _ = servers[0].circuit.finish(opened, N)
    return vector


def test_honest_round_through_the_protocol_steps_gives_the_rule_output() -> None:
    # Prepare
    w = _world()
    # Execute: part 1, the chain's roots, coin1; part 2, coin2; the MPC
    roots = _part1(w)
    coins1 = {process_commit_deadline(s, CommitDeadline(roots)) for s in w.members}
    assert len(coins1) == 1
    (coin1,) = coins1
    roots2 = _part2(w, coin1)
    coins2 = {process_response_deadline(s, ResponseDeadline(roots2)) for s in w.members}
    got = _finish(w)
    # Assert: every member derived the same coins; the output is the plaintext rule's
    assert len(coins2) == 1
    want = w.rule.aggregate(np.stack(w.prepared), w.ctx).vector  # type: ignore[attr-defined]
    assert np.abs(got - want).max() < 1e-3


def _one_upload(w: World) -> Signed:
    return make_part1(w.proposers[0], w.prepared[0])[1][0]  # for member 0


def _violation(w: World, msg: Signed, member: int = 0) -> ProtocolViolation:
    with pytest.raises(ProtocolViolation) as e:
        process_upload(w.members[member], msg)
    return e.value


def test_an_upload_replayed_from_another_round_is_refused() -> None:
    w, other = _world(3), _world(4)
    msg = make_part1(other.proposers[0], other.prepared[0])[1][0]
    assert _violation(w, msg).reason is Reject.REPLAYED


def test_an_upload_for_another_member_is_refused() -> None:
    w = _world()
    assert _violation(w, _one_upload(w), member=1).reason is Reject.WRONG_RECEIVER


def test_a_tampered_or_forged_upload_is_refused() -> None:
    w = _world()
    msg = _one_upload(w)
    flipped = replace(msg, signature=bytes([msg.signature[0] ^ 1]) + msg.signature[1:])
    assert _violation(w, flipped).reason is Reject.BAD_SIGNATURE
    body = replace(msg, body=msg.body[:-1] + bytes([msg.body[-1] ^ 1]))
    assert _violation(w, body).reason is Reject.BAD_SIGNATURE
    # signed by another key while claiming the proposer's address
    forged = make_signed(w.voter, task=TASK, rnd=3, kind=Kind.UPLOAD,
                         receiver=w.view.committee[0], body=msg.body)
    forged = replace(forged, header=replace(forged.header, sender=msg.header.sender))
    assert _violation(w, forged).reason is Reject.BAD_SIGNATURE


def test_an_upload_from_a_peer_not_elected_is_refused() -> None:
    w = _world()
    msg = make_signed(w.voter, task=TASK, rnd=3, kind=Kind.UPLOAD,
                      receiver=w.view.committee[0], body=_one_upload(w).body)
    assert _violation(w, msg).reason is Reject.NOT_SELECTED


def test_a_duplicate_and_a_replacing_upload_are_refused() -> None:
    # Prepare: the proposer's upload is admitted
    w = _world()
    msg = _one_upload(w)
    process_upload(w.members[0], msg)
    # Execute / Assert: the same message again, and a new part 1 in place of the first
    assert _violation(w, msg).reason is Reject.DUPLICATE
    w.proposers[0].roots.clear()
    replacing = make_part1(w.proposers[0], w.prepared[1])[1][0]
    assert _violation(w, replacing).reason is Reject.DUPLICATE


def test_trailing_bytes_in_a_message_or_an_upload_are_malformed() -> None:
    w = _world()
    msg = _one_upload(w)
    with pytest.raises(ProtocolViolation) as e:
        decode(encode(msg) + b"\x00")
    assert e.value.reason is Reject.MALFORMED
    upload = decode_upload(msg.body, "x")
    with pytest.raises(ProtocolViolation) as e:
        decode_upload(encode_upload(upload) + b"\x00", "x")
    assert e.value.reason is Reject.MALFORMED
    assert decode_upload(encode_upload(upload), "x") == upload


def test_uploads_of_the_wrong_part_or_after_the_deadline_are_refused() -> None:
    w = _world()
    early = make_signed(w.proposers[1].me, task=TASK, rnd=3, kind=Kind.UPLOAD,
                        receiver=w.view.committee[0],
                        body=encode_upload(Upload(2, (bytes(32),) * M, b"x" * 64)))
    assert _violation(w, early).reason is Reject.WRONG_PHASE
    roots = _part1(w)
    process_commit_deadline(w.members[0], CommitDeadline(roots))
    late = make_signed(w.proposers[1].me, task=TASK, rnd=3, kind=Kind.UPLOAD,
                       receiver=w.view.committee[0],
                       body=encode_upload(Upload(1, (bytes(32),) * M, b"y" * 64)))
    assert _violation(w, late).reason is Reject.WRONG_PHASE


def test_uploads_not_bound_on_chain_are_dropped_and_leave_the_coin_alone() -> None:
    # Prepare: proposer 2 posts a root other than its uploads' (or none)
    w, ref = _world(), _world()
    roots = _part1(w)
    _part1(ref)
    honest_roots = {a: r for a, r in roots.items() if a != w.view.proposers[2]}
    # Execute
    coin = process_commit_deadline(w.members[0], CommitDeadline(
        {**roots, w.view.proposers[2]: bytes(32)}))
    coin_without = process_commit_deadline(ref.members[0], CommitDeadline(honest_roots))
    # Assert: named and dropped; the coin hashes only what the chain bound
    assert w.members[0].rejected[2][0] is Reject.HASH_MISMATCH
    assert ref.members[0].rejected[2][0] is Reject.HASH_MISMATCH
    assert w.members[0].server.committed(2, 1) is None
    assert coin != coin_without  # different proposals, different roots
    again = process_commit_deadline(_rebind(w), CommitDeadline(roots))
    assert again != coin


def _rebind(w: World) -> MemberState:
    """A fresh member state over the same uploads (to compare coins)."""
    fresh = _world()
    for p, x in zip(fresh.proposers, w.prepared, strict=True):
        _deliver(fresh, make_part1(p, x)[1])
    return fresh.members[0]


def _to_ready(w: World) -> None:
    roots = _part1(w)
    coin1 = {process_commit_deadline(s, CommitDeadline(roots)) for s in w.members}.pop()
    roots2 = _part2(w, coin1)
    for s in w.members:
        process_response_deadline(s, ResponseDeadline(roots2))


def _route(w: World, msgs: list[Signed], tamper: object = None) -> None:
    """Deliver member-to-member messages until none is left (a loopback in miniature)."""
    from phalanx.protocol.committee import process_evidence, process_finished, process_opening

    steps = {Kind.OPENING: process_opening, Kind.EVIDENCE: process_evidence,
             Kind.FINISHED: process_finished}
    queue = list(msgs)
    while queue:
        msg = queue.pop(0)
        if tamper is not None:
            msg = tamper(msg)  # type: ignore[operator]
        step = steps[msg.header.kind]
        queue += step(w.members[w.view.seat(msg.header.receiver)], _wire(msg))


def test_the_members_open_and_agree_through_signed_messages() -> None:
    from phalanx.protocol.committee import get_accepted, get_output, process_pass

    # Prepare
    w = _world()
    _to_ready(w)
    # Execute: each member's pass, then the openings, member to member
    _route(w, [m for s in w.members for m in process_pass(s)])
    # Assert: every member decoded the same output, equal to the plaintext rule's
    want = w.rule.aggregate(np.stack(w.prepared), w.ctx).vector  # type: ignore[attr-defined]
    outs = [get_output(s) for s in w.members]
    assert all(o is not None for o in outs)
    assert all(np.array_equal(o, outs[0]) for o in outs)
    assert np.abs(outs[0] - want).max() < 1e-3
    assert all(get_accepted(s) == list(range(N)) for s in w.members)


def test_a_member_altering_its_final_share_is_identified_by_every_other_member() -> None:
    from phalanx.protocol.committee import get_output, process_pass
    from phalanx.protocol.openings import decode_opening, encode_opening

    # Prepare: member 2 adds 1 to its first aggregate share (re-signed: it is its message)
    w = _world()
    _to_ready(w)
    bad = w.members[2].me

    def tamper(msg: Signed) -> Signed:
        if msg.header.sender != bad.address or w.members[0].phase.name != "FINAL":
            return msg
        kind, items = decode_opening(msg.body, "")
        first = min(items)
        items[first] = items[first].copy()
        items[first][0] = (int(items[first][0]) + 1) % ((1 << 61) - 1)
        return make_signed(bad, task=TASK, rnd=3, kind=Kind.OPENING,
                           receiver=msg.header.receiver, body=encode_opening(kind, items))

    # Execute
    _route(w, [m for s in w.members for m in process_pass(s)], tamper)
    # Assert: the honest members name member 2 and still agree on the right output
    honest = [s for j, s in enumerate(w.members) if j != 2]
    assert all(2 in s.server.cheaters for s in honest)
    want = w.rule.aggregate(np.stack(w.prepared), w.ctx).vector  # type: ignore[attr-defined]
    assert all(np.abs(get_output(s) - want).max() < 1e-3 for s in honest)


def test_an_early_opening_is_kept_a_late_or_second_one_refused() -> None:
    from phalanx.protocol.committee import process_opening, process_pass
    from phalanx.protocol.openings import encode_opening

    w = _world()
    _to_ready(w)
    msgs = process_pass(w.members[0])
    to1 = next(m for m in msgs if m.header.receiver == w.view.committee[1])
    # member 1 has not run its pass yet: the shares are kept, and taken in by its pass
    assert process_opening(w.members[1], to1) == []
    assert len(w.members[1].early) == 1
    process_pass(w.members[1])
    assert w.members[1].early == {} and 0 in w.members[1].inbox
    again = make_signed(w.members[0].me, task=TASK, rnd=3, kind=Kind.OPENING,
                        receiver=w.view.committee[1],
                        body=encode_opening(OpeningKind.CONSISTENCY, {}))
    with pytest.raises(ProtocolViolation) as e:
        process_opening(w.members[1], again)
    assert e.value.reason is Reject.DUPLICATE
    # once past the consistency opening, consistency shares are of the wrong stage
    _route(w, [m for s in w.members[2:] for m in process_pass(s)])
    late = make_signed(w.members[0].me, task=TASK, rnd=3, kind=Kind.OPENING,
                       receiver=w.view.committee[1],
                       body=encode_opening(OpeningKind.CONSISTENCY, {0: np.zeros(1, np.uint64)}))
    with pytest.raises(ProtocolViolation) as e:
        process_opening(w.members[1], late)
    assert e.value.reason is Reject.WRONG_PHASE


def test_a_withheld_przs_key_is_left_out_by_every_member_and_the_round_opens() -> None:
    from phalanx.mpc.przs import key_sets
    from phalanx.protocol.committee import get_accepted, get_output, process_pass

    # Prepare: member 0 deals its PRZS keys to everyone but member 3
    w = _world(withhold=(0, 3))
    lacking = [a for a in key_sets(M, T) if a[0] == 0 and 3 in a]
    assert w.members[3].server.missing_przs() == lacking
    _to_ready(w)
    # Execute: the pass (member 3 lists what it lacks in its consistency shares), openings
    _route(w, [m for s in w.members for m in process_pass(s)])
    # Assert: every member left out the same sets, nobody is blamed, the output is the rule's
    assert all(s.server.przs_skip == set(lacking) for s in w.members)
    assert all(s.server.cheaters == set() and s.aborted is None for s in w.members)
    want = w.rule.aggregate(np.stack(w.prepared), w.ctx).vector  # type: ignore[attr-defined]
    outs = [get_output(s) for s in w.members]
    assert all(o is not None and np.abs(o - want).max() < 1e-3 for o in outs)
    assert all(get_accepted(s) == list(range(N)) for s in w.members)
    # the set of the m - t members other than the withholder is kept: the masks stay private
    assert (1, 2, 3, 4) not in w.members[1].server.przs_skip


def test_a_member_listing_przs_sets_it_does_not_belong_to_is_refused() -> None:
    from phalanx.mpc.przs import key_sets
    from phalanx.protocol.committee import PRZS_MISSING, process_opening, process_pass
    from phalanx.protocol.openings import encode_opening

    # Prepare: member 0 claims it lacks the key of the set of members 1..4 (not its set)
    w = _world()
    _to_ready(w)
    process_pass(w.members[1])
    honest_only = key_sets(M, T).index((1, 2, 3, 4))
    body = encode_opening(OpeningKind.CONSISTENCY,
                          {PRZS_MISSING: np.array([honest_only], np.uint64)})
    msg = make_signed(w.members[0].me, task=TASK, rnd=3, kind=Kind.OPENING,
                      receiver=w.view.committee[1], body=body)
    # Execute / Assert: refused and named, nothing kept
    with pytest.raises(ProtocolViolation) as e:
        process_opening(w.members[1], _wire(msg))
    assert e.value.reason is Reject.MALFORMED and "does not belong" in e.value.detail
    assert 0 not in w.members[1].inbox


def _proposer_with_reveals(w: World) -> ProposerState:
    """Proposer 0 after both parts, able to answer disputes (its sender keeps ephemerals)."""
    sender = Sender()
    p = ProposerState(w.proposers[0].me, w.view, w.proposers[0].circuit, OsSecrets(),
                      sender.seal_to, sender.reveal)
    make_part1(p, w.prepared[0])
    make_part2(p, b"c" * 32)
    return p


def _dispute(w: World, seat: int, body: bytes, sender: Identity | None = None) -> Signed:
    me = sender or w.members[seat].me
    return _wire(make_signed(me, task=TASK, rnd=3, kind=Kind.DISPUTE,
                             receiver=w.proposers[0].me.address, body=body))


def test_a_member_may_dispute_only_its_own_share_so_no_honest_envelope_is_revealed() -> None:
    from phalanx.protocol.disputes import decode_reveal, encode_dispute
    from phalanx.protocol.proposer import process_dispute

    w = _world()
    p = _proposer_with_reveals(w)
    # a member naming another seat (an honest one's envelope: t + 1 shares) is refused
    with pytest.raises(ProtocolViolation) as e:
        process_dispute(p, _dispute(w, 0, encode_dispute(0, 1)))
    assert e.value.reason is Reject.MALFORMED and "its own share" in e.value.detail
    # a dispute about another client is refused too
    with pytest.raises(ProtocolViolation) as e:
        process_dispute(p, _dispute(w, 0, encode_dispute(1, 0)))
    assert e.value.reason is Reject.MALFORMED
    # its own seat: that one envelope is revealed, to every member, once
    out = process_dispute(p, _dispute(w, 2, encode_dispute(0, 2)))
    assert sorted(m.header.receiver for m in out) == sorted(w.view.committee)
    assert set(decode_reveal(out[0].body, "")) == {2}
    again = _wire(make_signed(w.members[2].me, task=TASK, rnd=4, kind=Kind.DISPUTE,
                              receiver=p.me.address, body=encode_dispute(0, 2)))
    with pytest.raises(ProtocolViolation) as e:
        process_dispute(p, again)
    assert e.value.reason is Reject.REPLAYED


def test_malformed_or_unelected_disputes_are_refused_and_named() -> None:
    from phalanx.protocol.disputes import encode_dispute
    from phalanx.protocol.proposer import process_dispute

    w = _world()
    p = _proposer_with_reveals(w)
    for body in (b"", encode_dispute(0, 0) + b"\x00", b"\x00\x00"):
        with pytest.raises(ProtocolViolation) as e:
            process_dispute(p, _dispute(w, 0, body))
        assert e.value.reason is Reject.MALFORMED and e.value.peer == w.members[0].me.address
    with pytest.raises(ProtocolViolation) as e:  # a voter is no member
        process_dispute(p, _dispute(w, 0, encode_dispute(0, 0), sender=w.voter))
    assert e.value.reason is Reject.NOT_SELECTED
    assert p.revealed == set()


def test_malformed_reveals_are_refused_and_early_ones_kept() -> None:
    from phalanx.protocol.committee import process_reveal
    from phalanx.protocol.disputes import RevealedPart, encode_reveal

    w = _world()
    _to_ready(w)
    prop = w.proposers[0].me
    part = RevealedPart((b"\x01" * 32,) * M, b"sealed", b"\x02" * 32)
    good = encode_reveal({1: (part, part)})

    def reveal(body: bytes) -> Signed:
        return _wire(make_signed(prop, task=TASK, rnd=3, kind=Kind.REVEAL,
                                 receiver=w.view.committee[0], body=body))

    for body in (good + b"\x00", good[:-1], b"", b"\x01\x01\x00"):
        with pytest.raises(ProtocolViolation) as e:
            process_reveal(w.members[0], reveal(body))
        assert e.value.reason is Reject.MALFORMED
    # before its consistency opening is decoded, a well-formed reveal is kept, not judged,
    # and forwarded once to every other member (EVIDENCE carrying the proposer's message)
    msg = reveal(good)
    out = process_reveal(w.members[0], msg)
    assert len(w.members[0].early_reveals[0]) == 1
    assert sorted(m.header.receiver for m in out) == sorted(w.view.committee[1:])
    assert all(m.header.kind is Kind.EVIDENCE and decode(m.body) == msg for m in out)


def test_przs_keys_travel_as_signed_messages_and_each_way_to_cheat_is_refused() -> None:
    from phalanx.protocol.committee import process_przs_key, start_member

    # Prepare: fresh members that hold no keys yet (the world dealt them by hand: redo it)
    w = _world(withhold=(0, 1))
    m0, m1 = w.members[0], w.members[1]
    m1.server.keys = {a: k for a, k in m1.server.keys.items() if a[0] != 0}
    dealt = [msg for msg in start_member(m0) if msg.header.receiver == m1.me.address]
    assert dealt and all(msg.header.kind is Kind.PRZS_KEY for msg in dealt)

    def refused(msg: Signed) -> ProtocolViolation:
        with pytest.raises(ProtocolViolation) as e:
            process_przs_key(m1, _wire(msg))
        return e.value

    # a proposer is not elected to deal keys; a key for another round is a replay
    forged = make_signed(w.proposers[0].me, task=TASK, rnd=3, kind=Kind.PRZS_KEY,
                         receiver=m1.me.address, body=dealt[0].body)
    assert refused(forged).reason is Reject.NOT_SELECTED
    replay = make_signed(m0.me, task=TASK, rnd=2, kind=Kind.PRZS_KEY, receiver=m1.me.address,
                         body=dealt[0].body)
    assert refused(replay).reason is Reject.REPLAYED
    # a key that opens for no set of this dealer is refused
    junk = make_signed(m0.me, task=TASK, rnd=3, kind=Kind.PRZS_KEY, receiver=m1.me.address,
                       body=b"\x00" * 80)
    assert refused(junk).reason is Reject.BAD_BUNDLE
    # the honest keys are kept, each once
    for msg in dealt:
        process_przs_key(m1, _wire(msg))
    assert m1.server.missing_przs() == []
    assert refused(dealt[0]).reason is Reject.DUPLICATE
    # after the pass began, no key is taken
    m2 = w.members[2]
    _to_ready(w)
    late = [msg for msg in start_member(m0) if msg.header.receiver == m2.me.address][0]
    with pytest.raises(ProtocolViolation) as e:
        process_przs_key(m2, _wire(late))
    assert e.value.reason is Reject.WRONG_PHASE


def test_a_member_attests_only_after_every_member_heard_in_the_final_said_finished() -> None:
    from phalanx.protocol.committee import Phase, awaited, process_opening_deadline, process_pass

    # Prepare: every message flows, except member 4's FINISHED to member 0
    w = _world()
    _to_ready(w)
    late = w.view.committee[4]

    def drop(msg: Signed) -> Signed | None:
        lost = msg.header.kind is Kind.FINISHED and msg.header.sender == late \
            and msg.header.receiver == w.view.committee[0]
        return None if lost else msg

    _route_some(w, [m for s in w.members for m in process_pass(s)], drop)
    # Assert: the others closed on every FINISHED; member 0 waits for seat 4 alone, then its
    # deadline closes it (a member that said nothing more delays, it cannot block)
    assert all(s.phase is Phase.DONE and s.finished == set(range(M)) - {j}
               for j, s in enumerate(w.members) if j)
    assert w.members[0].phase is Phase.CLOSING and awaited(w.members[0]) == {4}
    process_opening_deadline(w.members[0])
    assert w.members[0].phase is Phase.DONE


def _route_some(w: World, msgs: list[Signed], keep: object) -> None:
    from phalanx.protocol.committee import process_evidence, process_finished, process_opening

    steps = {Kind.OPENING: process_opening, Kind.EVIDENCE: process_evidence,
             Kind.FINISHED: process_finished}
    queue = list(msgs)
    while queue:
        msg = keep(queue.pop(0))  # type: ignore[operator]
        if msg is not None:
            queue += steps[msg.header.kind](w.members[w.view.seat(msg.header.receiver)],
                                            _wire(msg))


def test_finished_and_forwarded_messages_are_parsed_exactly_and_each_way_to_cheat_refused() -> None:
    from phalanx.protocol.committee import process_evidence, process_finished, process_pass
    from phalanx.protocol.disputes import encode_dispute
    from phalanx.protocol.messages import encode_many

    w = _world()
    _to_ready(w)
    opening = next(m for m in process_pass(w.members[1])
                   if m.header.receiver == w.view.committee[0])
    one, me = w.members[1].me, w.view.committee[0]

    def finished(body: bytes, sender: Identity = one) -> Signed:
        return _wire(make_signed(sender, task=TASK, rnd=3, kind=Kind.FINISHED, receiver=me,
                                 body=body))

    def refused(step: object, msg: Signed) -> Reject:
        with pytest.raises(ProtocolViolation) as e:
            step(w.members[0], msg)  # type: ignore[operator]
        return e.value.reason

    # malformed lists: empty body, trailing bytes, a short entry, more entries than allowed
    for body in (b"", encode_many([]) + b"\x00", encode_many([opening])[:-1],
                 (3 * M + 1).to_bytes(2, "big")):
        assert refused(process_finished, finished(body)) is Reject.MALFORMED
    # a listed message that is not an opening
    dispute = make_signed(one, task=TASK, rnd=3, kind=Kind.DISPUTE, receiver=me,
                          body=encode_dispute(0, 1))
    assert refused(process_finished, finished(encode_many([dispute]))) is Reject.MALFORMED
    # not a member; then the honest FINISHED is taken once, a second one is a duplicate
    assert refused(process_finished, finished(encode_many([]), w.voter)) is Reject.NOT_SELECTED
    assert process_finished(w.members[0], finished(encode_many([opening]))) == []
    assert 1 in w.members[0].finished
    again = finished(encode_many([]))
    assert refused(process_finished, again) is Reject.DUPLICATE

    # EVIDENCE: an upload is never forwarded; a REVEAL signed by a member is not a reveal
    def evidence(inner: Signed) -> Signed:
        return _wire(make_signed(one, task=TASK, rnd=3, kind=Kind.EVIDENCE, receiver=me,
                                 body=encode(inner)))

    upload = make_signed(w.proposers[0].me, task=TASK, rnd=3, kind=Kind.UPLOAD,
                         receiver=w.view.committee[1], body=b"x")
    assert refused(process_evidence, evidence(upload)) is Reject.MALFORMED
    fake = make_signed(one, task=TASK, rnd=3, kind=Kind.REVEAL, receiver=me, body=b"\x00")
    assert refused(process_evidence, evidence(fake)) is Reject.NOT_SELECTED
    # a forwarded DISPUTE counts once (the member at seat 1 asked about client 0) and is
    # passed on to the members that have not seen it
    out = process_evidence(w.members[0], evidence(dispute))
    assert (0, 1) in w.members[0].asked
    assert sorted(m.header.receiver for m in out) == sorted(w.view.committee[2:])
    relay2 = _wire(make_signed(w.members[2].me, task=TASK, rnd=3, kind=Kind.EVIDENCE,
                               receiver=me, body=encode(dispute)))
    assert process_evidence(w.members[0], relay2) == []


def test_can_open_says_whether_the_shares_in_could_open_the_current_opening() -> None:
    from phalanx.protocol.committee import ROUND, Phase, can_open, process_opening, process_pass

    # Prepare: every member ran its pass; member 0 holds only its own consistency shares
    w = _world()
    _to_ready(w)
    sent = {j: process_pass(s) for j, s in enumerate(w.members)}
    me = w.members[0]

    def to0(j: int) -> Signed:
        return next(m for m in sent[j] if m.header.receiver == w.view.committee[0])

    # Assert: a client's consistency values open once m - t members' shares are in (with
    # fewer its step rejects it as missing the deadline)
    assert me.phase is Phase.CONSISTENCY and not can_open(me)
    for j in (1, 2):
        process_opening(me, _wire(to0(j)))
        assert not can_open(me)
    process_opening(me, _wire(to0(3)))
    assert can_open(me)
    # the checks too, counting only shares (a member abstaining sends none)
    share = np.zeros(1, np.uint64)
    me.phase, me.verdicts, me.heard = Phase.CHECKS, {}, frozenset(range(M))
    me.inbox = {j: {c: share for c in me.bound} for j in range(3)} | {3: {}}
    assert not can_open(me)
    me.inbox[4] = {c: share for c in me.bound}
    assert can_open(me)
    # a final value of degree 2t needs 2t + 1 members' shares, one of degree t needs t + 1
    me.phase, me.final_degrees = Phase.FINAL, (False, True)
    me.inbox = {j: {ROUND: share, ROUND - 1: share} for j in range(2)}
    assert not can_open(me)
    me.final_degrees = (False, False)
    assert can_open(me)
