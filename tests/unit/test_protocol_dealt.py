"""Dealt zero sharings in the per-peer protocol (protocol/committee.py; docs/protocol.md,
"Dealt zero sharings"): an honest round at (9, 2) gives the rule output, and each way to
cheat the new ZERO_DEAL / ZERO_REVEAL messages is refused or names the cheater."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from phalanx.errors import ProtocolViolation, Reject
from phalanx.mpc.parties import SeededSecrets
from phalanx.mpc.server import Server
from phalanx.net.envelope import Sender, opener_of
from phalanx.protocol import committee as steps
from phalanx.protocol.committee import CommitDeadline, MemberState, ResponseDeadline
from phalanx.protocol.dealing import decode_deal, encode_deal
from phalanx.protocol.identity import Identity
from phalanx.protocol.messages import Kind, Signed, decode, encode, make_signed
from phalanx.protocol.proposer import ProposerState, make_part1, make_part2
from phalanx.protocol.round import RoundView
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.secure import SecureParams, make_circuit
from phalanx.rules.secure.parties import OsSecrets

D, M, T, N = 200, 9, 2, 3
TASK = "0x" + "cd" * 20
IDS = SeededSecrets(b"Z" * 32)


@dataclass
class World:
    view: RoundView
    members: list[MemberState]
    proposers: list[ProposerState]
    prepared: list[np.ndarray]
    rule: object
    ctx: RuleContext


def _world(rnd: int = 3) -> World:
    members = [Identity.from_source(IDS, f"member{j}") for j in range(M)]
    props = [Identity.from_source(IDS, f"proposer{i}") for i in range(N)]
    voter = Identity.from_source(IDS, "voter")
    view = RoundView(TASK, rnd, b"beacon" * 5 + b"xy", tuple(p.address for p in members),
                     tuple(p.address for p in props), (voter.address,),
                     tuple(p.x25519_public for p in members), T)
    rng = np.random.default_rng(7)
    rule = make_rule("fltrust")
    ctx = RuleContext(dim=D, reference=rng.standard_normal(D).astype(np.float32))
    prepared = [rule.prepare(rng.standard_normal(D).astype(np.float32), ctx) for _ in range(N)]
    params = SecureParams(m=M, t=T)
    states = []
    for j, me in enumerate(members):
        sender = Sender()
        server = Server(j, make_circuit(rule, ctx, params, N), m=M, t=T, session=view.session,
                        secrets=OsSecrets(), party=me.address, zero="dealt",
                        sealer=lambda r, p, c, o, s=sender: s.seal_to(view.member_keys[r], p, c, o),
                        opener=opener_of(me.x25519_secret))
        states.append(MemberState(me, view, server))
    proposers = [ProposerState(p, view, make_circuit(rule, ctx, params, N), OsSecrets(),
                               Sender().seal_to) for p in props]
    return World(view, states, proposers, prepared, rule, ctx)


def _wire(msg: Signed) -> Signed:
    return decode(encode(msg), msg.header.sender)


def _deal(w: World, alter: object = None) -> None:
    """Every member deals; ``alter(msg)`` may change or drop (None) a ZERO_DEAL."""
    for s in w.members:
        for msg in steps.start_member(s):
            if alter is not None:
                msg = alter(msg)  # type: ignore[operator]
            if msg is not None:
                try:
                    steps.process_zero_deal(w.members[w.view.seat(msg.header.receiver)],
                                            _wire(msg))
                except ProtocolViolation:
                    pass  # listed as lacking: what the test looks at


def _to_ready(w: World) -> None:
    roots = {}
    for p, x in zip(w.proposers, w.prepared, strict=True):
        root, msgs = make_part1(p, x)
        roots[p.me.address] = root
        for msg in msgs:
            steps.process_upload(w.members[w.view.seat(msg.header.receiver)], _wire(msg))
    coin1 = {steps.process_commit_deadline(s, CommitDeadline(roots)) for s in w.members}.pop()
    roots2 = {}
    for p in w.proposers:
        root, msgs = make_part2(p, coin1)
        roots2[p.me.address] = root
        for msg in msgs:
            steps.process_upload(w.members[w.view.seat(msg.header.receiver)], _wire(msg))
    for s in w.members:
        steps.process_response_deadline(s, ResponseDeadline(roots2))


def _route(w: World, msgs: list[Signed], tamper: object = None) -> None:
    table = {Kind.OPENING: steps.process_opening, Kind.EVIDENCE: steps.process_evidence,
             Kind.FINISHED: steps.process_finished, Kind.ZERO_REVEAL: steps.process_zero_reveal}
    queue = list(msgs)
    while queue:
        msg = queue.pop(0)
        if tamper is not None:
            msg = tamper(msg)  # type: ignore[operator]
        try:
            queue += table[msg.header.kind](w.members[w.view.seat(msg.header.receiver)],
                                            _wire(msg))
        except ProtocolViolation:
            pass  # refused (e.g. from a member already identified): a peer logs it


def _run(w: World, tamper: object = None) -> None:
    _to_ready(w)
    _route(w, [m for s in w.members for m in steps.process_pass(s)], tamper)


def test_an_honest_dealt_round_gives_the_rule_output_with_no_przs_key() -> None:
    # Prepare
    w = _world()
    # Execute
    _deal(w)
    _run(w)
    # Assert: every member decoded the plaintext rule's output; no PRZS key was dealt
    want = w.rule.aggregate(np.stack(w.prepared), w.ctx).vector  # type: ignore[attr-defined]
    outs = [steps.get_output(s) for s in w.members]
    assert all(o is not None and np.array_equal(o, outs[0]) for o in outs)
    assert np.abs(outs[0] - want).max() < 1e-3
    assert all(steps.get_accepted(s) == list(range(N)) for s in w.members)
    assert all(not s.server.keys and not s.server.cheaters for s in w.members)


def _deals_to(w: World, dealer: int, receiver: int) -> Signed:
    return next(m for m in steps.start_member(w.members[dealer])
                if m.header.receiver == w.view.committee[receiver])


def test_zero_deals_that_cheat_admission_are_refused() -> None:
    # Prepare: member 1 is to receive member 0's dealing
    w = _world()
    for s in w.members:
        s.zero_labels = steps.zero_labels(s)
    m1 = w.members[1]
    honest = _deals_to(w, 0, 1)

    def refused(msg: Signed) -> Reject:
        with pytest.raises(ProtocolViolation) as e:
            steps.process_zero_deal(m1, _wire(msg))
        return e.value.reason

    def signed(who: Identity, body: bytes, rnd: int = 3) -> Signed:
        return make_signed(who, task=TASK, rnd=rnd, kind=Kind.ZERO_DEAL,
                           receiver=m1.me.address, body=body)

    # a proposer is not elected to deal; a dealing of another round is a replay
    assert refused(signed(w.proposers[0].me, honest.body)) is Reject.NOT_SELECTED
    assert refused(signed(w.members[0].me, honest.body, rnd=2)) is Reject.REPLAYED
    # a wrong length (a byte short, a byte more, one label too few) is malformed
    assert refused(signed(w.members[0].me, honest.body[:-1])) is Reject.MALFORMED
    assert refused(signed(w.members[0].me, honest.body + b"\0")) is Reject.MALFORMED
    parts = decode_deal(honest.body, "", m=M, labels=len(m1.zero_labels))
    assert refused(signed(w.members[0].me, encode_deal(parts[:-1]))) is Reject.MALFORMED
    # the honest dealing is kept once; a second one from the same dealer is refused
    steps.process_zero_deal(m1, _wire(honest))
    assert refused(signed(w.members[0].me, encode_deal(parts[::-1]))) is Reject.DUPLICATE
    # a payload that is not the committed one is refused and listed as lacking
    forged = encode_deal([parts[0].__class__(parts[0].commitments[::-1], parts[0].sealed),
                          *parts[1:]])
    assert refused(make_signed(w.members[2].me, task=TASK, rnd=3, kind=Kind.ZERO_DEAL,
                               receiver=m1.me.address, body=forged)) is Reject.BAD_BUNDLE
    assert 2 in steps._zero_lacking(m1)
    # after the pass began, no dealing is taken
    _deal(w)
    _to_ready(w)
    late = make_signed(w.members[3].me, task=TASK, rnd=3, kind=Kind.ZERO_DEAL,
                       receiver=m1.me.address, body=honest.body)
    assert refused(late) is Reject.WRONG_PHASE


def test_a_dealer_withholding_from_more_than_t_members_is_identified_and_left_out() -> None:
    # Prepare: member 4 deals to nobody but member 5
    w = _world()

    def withhold(msg: Signed) -> Signed | None:
        bad = msg.header.sender == w.view.committee[4]
        return None if bad and msg.header.receiver != w.view.committee[5] else msg

    # Execute
    _deal(w, withhold)
    _run(w)
    # Assert: the round opens the rule output; every other member names member 4
    want = w.rule.aggregate(np.stack(w.prepared), w.ctx).vector  # type: ignore[attr-defined]
    for j, s in enumerate(w.members):
        if j == 4:
            continue
        out = steps.get_output(s)
        assert out is not None and np.abs(out - want).max() < 1e-3
        assert 4 in s.server.cheaters and "lack" in s.evidence[4]


def _bad_dealing(w: World, dealer: int) -> None:
    """Make ``dealer``'s dealt shares not a zero sharing: add 1 to what it holds of its own
    (its check value then leaves the codeword)."""
    s = w.members[dealer].server
    for label in s.dealt:
        s.dealt[label][dealer] = (s.dealt[label][dealer] + np.uint64(1)) % np.uint64((1 << 61) - 1)


def test_a_dealing_that_is_not_a_sharing_of_zero_names_its_dealer() -> None:
    # Prepare: member 3 deals a payload to member 6 that is not of its committed zero sharing
    w = _world()
    from phalanx.mpc import dealt

    real = dealt.deal

    def corrupt_deal(dealer: int, **kw: object) -> dealt.Dealing:
        d = real(dealer, **kw)  # type: ignore[arg-type]
        if dealer != 3:
            return d
        payloads = dict(d.payloads)
        victim = next(j for j in range(M) if j not in dealt.seeded_holders(3, M, T))
        p = bytearray(payloads[victim])
        p[dealt.SALT_BYTES + 2] ^= 1  # a different, committed share: not a zero sharing
        payloads[victim] = bytes(p)
        return dealt.Dealing(d.dealer, d.label, d.length, payloads,
                             {j: dealt.commitment(3, j, d.label, q) for j, q in payloads.items()})

    import phalanx.mpc.server as server_mod

    server_mod.deal = corrupt_deal  # type: ignore[assignment]
    try:
        _deal(w)
    finally:
        server_mod.deal = real  # type: ignore[assignment]
    # Execute
    _run(w)
    # Assert: every member aborts, naming member 3 (and only it)
    for j, s in enumerate(w.members):
        if j == 3:
            continue
        assert s.aborted is not None and "dealt zero sharing" in s.aborted
        assert s.server.cheaters == {3}, (j, s.server.cheaters, s.evidence)
        assert "not a committed zero sharing" in s.evidence[3]


def test_a_member_lying_about_a_check_value_is_named_not_the_dealer() -> None:
    # Prepare: member 7 sends a wrong check value for dealer 0
    w = _world()
    _deal(w)

    def lie(msg: Signed) -> Signed:
        from phalanx.protocol.openings import decode_opening, encode_opening

        if msg.header.sender != w.view.committee[7] or msg.header.kind is not Kind.OPENING:
            return msg
        kind, items = decode_opening(msg.body, "")
        if steps.ZERO_CHECKS not in items:
            return msg
        items[steps.ZERO_CHECKS] = items[steps.ZERO_CHECKS].copy()
        items[steps.ZERO_CHECKS][0] = (items[steps.ZERO_CHECKS][0] + np.uint64(5))
        return make_signed(w.members[7].me, task=TASK, rnd=3, kind=Kind.OPENING,
                           receiver=msg.header.receiver, body=encode_opening(kind, items))

    # Execute: member 7 (its own check passes) reveals nothing; the others' deadline fires
    _run(w, lie)
    for s in w.members:
        steps.process_opening_deadline(s)
    # Assert: the honest members name member 7, never dealer 0
    for j, s in enumerate(w.members):
        if j == 7:
            continue
        assert s.aborted is not None, (j, s.phase, s.server.cheaters, s.evidence)
        assert s.server.cheaters == {7}, (j, s.server.cheaters, s.evidence)


def test_zero_reveals_out_of_phase_or_twice_are_refused() -> None:
    # Prepare
    w = _world()
    _deal(w)
    m1 = w.members[1]
    body = (0).to_bytes(2, "big")
    msg = make_signed(w.members[0].me, task=TASK, rnd=3, kind=Kind.ZERO_REVEAL,
                      receiver=m1.me.address, body=body)
    # before the pass: wrong phase
    with pytest.raises(ProtocolViolation) as e:
        steps.process_zero_reveal(m1, _wire(msg))
    assert e.value.reason is Reject.WRONG_PHASE
    _to_ready(w)
    steps.process_pass(m1)
    steps.process_zero_reveal(m1, _wire(msg))
    again = make_signed(w.members[0].me, task=TASK, rnd=3, kind=Kind.ZERO_REVEAL,
                        receiver=m1.me.address, body=body + b"")
    with pytest.raises(ProtocolViolation) as e:
        steps.process_zero_reveal(m1, _wire(again))
    assert e.value.reason is Reject.DUPLICATE
