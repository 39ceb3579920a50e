"""Issue 9's attacks run through the per-peer protocol code (sim/peers.py over protocol/):
a member that lies about a client's shares or claims its upload does not open is identified
by the dispute (protocol.md §3.4) and slashed, the client it targeted stays in; a client that
cannot back its envelope is the one rejected; an observer who knows the run's seed learns
nothing it could use to open an envelope."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from phalanx.errors import ProtocolViolation, Reject
from phalanx.mpc.parties import SeededSecrets
from phalanx.mpc.prg import derive
from phalanx.net.envelope import opener_of
from phalanx.protocol.identity import Identity
from phalanx.protocol.messages import Kind, decode
from phalanx.protocol.peer import Behaviour
from phalanx.protocol.round import RoundView
from phalanx.protocol.uploads import decode_upload
from phalanx.sim.config import SimConfig
from phalanx.sim.federation import RoundMetrics
from phalanx.sim.peers import PeerRun, build_peer_run, draw_roles, run_peer_round


def _run(**kw: object) -> PeerRun:
    base: dict[str, object] = dict(peers=12, committee=5, threshold=1, voters=2, rounds=1,
                                   model="logreg", secure=True, ledger="embedded", seed=6,
                                   attack="none", malicious=0.0)
    base.update(kw)
    return build_peer_run(SimConfig(**base))  # type: ignore[arg-type]


def _round(run: PeerRun, setup: Callable[[RoundView], None]) -> tuple[RoundView, RoundMetrics]:
    view = draw_roles(run)
    setup(view)
    return view, run_peer_round(run, 1, view=view)


def _peer(run: PeerRun, address: str) -> int:
    return run.index[address]


@pytest.mark.parametrize("defends", [False, True], ids=["silent", "disputes-own-share"])
@pytest.mark.parametrize("deviation", ["tamper_consistency", "false_claim"])
def test_a_member_lying_about_a_clients_upload_is_identified_and_the_client_kept(
        deviation: str, defends: bool) -> None:
    # Prepare: member 2 deviates against the first client it holds; silent, it leaves its
    # suspect share undefended; defending, it disputes it so the client must reveal
    run = _run()

    def setup(view: RoundView) -> None:
        run.peers[_peer(run, view.committee[2])].behaviour = Behaviour(
            **{deviation: True, "dispute_own": defends})

    # Execute
    view, row = _round(run, setup)
    # Assert: every honest member names seat 2 (by the reveal, or for not defending its
    # share), the targeted client is accepted, the chain slashes the member as a server
    honest = [run.peers[_peer(run, a)].member for j, a in enumerate(view.committee) if j != 2]
    assert all(m is not None and m.server.cheaters == {2} and 2 in m.evidence for m in honest)
    why = honest[0].evidence[2] if honest[0] is not None else ""
    assert ("did not dispute" in why) is not defends
    assert row.extra["cheating_servers"] == [2]
    assert row.accepted == row.proposers and row.rejected == []
    slashed = {(p, reason) for p, reason, _ in row.extra["ledger"]["slashed"]}
    assert (_peer(run, view.committee[2]), "server") in slashed
    assert row.extra["ledger"]["accepted"]


def test_without_the_reveal_a_client_whose_envelope_a_member_disputes_is_rejected() -> None:
    # Prepare: proposer 0 sends member 1 committed garbage, then answers no dispute
    run = _run()

    def setup(view: RoundView) -> None:
        run.peers[_peer(run, view.proposers[0])].behaviour = Behaviour(garbage_to=1,
                                                                       withhold_reveal=True)

    # Execute
    view, row = _round(run, setup)
    # Assert: member 1 disputed its share (it asked), no reveal came: the client is to blame
    reasons = {r["peer"]: r["reason"] for r in row.rejected}
    assert reasons == {_peer(run, view.proposers[0]): Reject.BAD_BUNDLE.value}
    assert row.extra["cheating_servers"] == []
    assert row.accepted == row.proposers - 1


def test_a_client_sending_one_member_garbage_is_rejected_after_the_dispute() -> None:
    # Prepare: proposer 0's envelope to member 1 is committed random bytes (the hash matches,
    # it does not open): one claim, fewer than t + 1, so the dispute decides
    run = _run()

    def setup(view: RoundView) -> None:
        run.peers[_peer(run, view.proposers[0])].behaviour = Behaviour(garbage_to=1)

    # Execute
    view, row = _round(run, setup)
    # Assert: the claim held when the client's own revealed envelope did not open
    reasons = {r["peer"]: r["reason"] for r in row.rejected}
    assert reasons == {_peer(run, view.proposers[0]): Reject.BAD_BUNDLE.value}
    assert row.extra["cheating_servers"] == []
    slashed = {(p, reason) for p, reason, _ in row.extra["ledger"]["slashed"]}
    assert (_peer(run, view.proposers[0]), "client") in slashed


def test_an_observer_with_the_runs_seed_cannot_open_any_envelope() -> None:
    # Prepare: a round's traffic, captured at member 0's endpoint
    run = _run()
    captured: list[bytes] = []
    view = draw_roles(run)
    member0 = run.endpoints[_peer(run, view.committee[0])]
    original = member0.receive

    def spy(timeout: float = 0.0):  # type: ignore[no-untyped-def]
        got = original(timeout)
        captured.extend(d.payload for d in got)
        return got

    member0.receive = spy  # type: ignore[method-assign]
    run_peer_round(run, 1, view=view)
    uploads = [decode(p) for p in captured]
    uploads = [m for m in uploads if m.header.kind is Kind.UPLOAD]
    assert uploads
    # Execute: the attacker derives every key the seed could give (as reproducible runs do)
    seed_root = derive(run.cfg.seed.to_bytes(8, "big"), "sim-party-secrets")
    guesses = [Identity.from_source(SeededSecrets(derive(seed_root, "peer", i)), f"peer:{i}")
               for i in range(len(run.peers))]
    # Assert: none of them is a real peer's key, and none opens member 0's envelopes
    assert {g.address for g in guesses}.isdisjoint(p.me.address for p in run.peers)
    from phalanx.mpc.committee_client import context_of

    up = decode_upload(uploads[0].body, "")
    client = view.client(uploads[0].header.sender)
    ctx = context_of(view.session, client, 0, up.part)
    for g in guesses:
        with pytest.raises(Exception):  # noqa: B017, PT011 - any failure to open will do
            opener_of(g.x25519_secret)(up.sealed, ctx, None).verify()
    # the real key opens it (the test would pass vacuously otherwise)
    me = run.peers[_peer(run, view.committee[0])].me
    opener_of(me.x25519_secret)(up.sealed, ctx, None)


def test_a_reveal_with_commitments_other_than_the_posted_roots_is_refused() -> None:
    from phalanx.protocol.committee import process_reveal
    from phalanx.protocol.disputes import RevealedPart, encode_reveal
    from phalanx.protocol.messages import make_signed

    # Prepare: a member in the dispute phase about client 0 (member 2 tampered)
    run = _run()

    def setup(view: RoundView) -> None:
        run.peers[_peer(run, view.committee[2])].behaviour = Behaviour(tamper_consistency=True)
        run.peers[_peer(run, view.proposers[0])].behaviour = Behaviour(withhold_reveal=True)

    view, _ = _round(run, setup)
    member = run.peers[_peer(run, view.committee[0])].member
    assert member is not None
    member.phase = type(member.phase).DISPUTE
    member.disputes = {0: {2}}
    fake = RevealedPart((bytes(32),) * 5, b"x" * 64, bytes(32))
    msg = make_signed(run.peers[_peer(run, view.proposers[0])].me, task=view.task,
                      rnd=view.round, kind=Kind.REVEAL, receiver=view.committee[0],
                      body=encode_reveal({2: (fake, fake)}))
    # Execute / Assert
    with pytest.raises(ProtocolViolation) as e:
        process_reveal(member, msg)
    assert e.value.reason is Reject.HASH_MISMATCH


def test_a_member_withholding_a_przs_key_neither_aborts_the_round_nor_gets_anyone_blamed() -> None:
    # Prepare: member 1 deals its PRZS keys to every member but seat 3
    run = _run()

    def setup(view: RoundView) -> None:
        run.peers[_peer(run, view.committee[1])].behaviour = Behaviour(withhold_przs_to=3)

    # Execute
    view, row = _round(run, setup)
    # Assert: the sets seat 3 lacks are left out by all; everyone accepted, nobody slashed
    members = [run.peers[_peer(run, a)].member for a in view.committee]
    skips = [m.server.przs_skip for m in members if m is not None]
    assert len(skips) == 5 and all(s == skips[0] and s for s in skips)
    assert all(1 in a and 3 in a for a in skips[0])
    assert row.extra["cheating_servers"] == [] and row.extra["aborted"] is None
    assert row.accepted == row.proposers and row.rejected == []
    assert row.extra["ledger"]["accepted"] and row.extra["ledger"]["slashed"] == []


def test_a_member_equivocating_to_one_member_is_named_by_every_honest_member() -> None:
    # Prepare: member 2 sends a wrong consistency share to member 0 only
    run = _run()

    def setup(view: RoundView) -> None:
        run.peers[_peer(run, view.committee[2])].behaviour = Behaviour(tamper_to=0)

    # Execute
    view, row = _round(run, setup)
    # Assert: member 0 forwarded the signed share; the others compared it with theirs and
    # name seat 2 too, so the honest attestations agree, the result stands and 2 is slashed
    honest = [run.peers[_peer(run, a)].member for j, a in enumerate(view.committee) if j != 2]
    assert all(m is not None and m.server.cheaters == {2} for m in honest)
    assert any("different shares" in m.evidence[2] for m in honest if m is not None)
    assert row.extra["cheating_servers"] == [2]
    assert row.accepted == row.proposers and row.rejected == []
    assert row.extra["ledger"]["stands"]
    slashed = {(p, reason) for p, reason, _ in row.extra["ledger"]["slashed"]}
    assert (_peer(run, view.committee[2]), "server") in slashed


def _honest_attestations(run: PeerRun, view: RoundView, bad: int) -> set[object]:
    from phalanx.protocol.peer import make_attestation

    members = [run.peers[_peer(run, a)].member for j, a in enumerate(view.committee) if j != bad]
    assert all(m is not None for m in members)
    return {make_attestation(m, b"") for m in members if m is not None}


def test_a_member_equivocating_in_the_final_opening_is_named_by_every_honest_member() -> None:
    # Prepare: member 2 sends a wrong share of the aggregate to member 0 only
    run = _run()

    def setup(view: RoundView) -> None:
        run.peers[_peer(run, view.committee[2])].behaviour = Behaviour(tamper_final_to=0)

    # Execute
    view, row = _round(run, setup)
    # Assert: member 0 decoded past the error and named 2; its FINISHED carried 2's signed
    # opening, the others' copies differ, so they name 2 before attesting: one attestation,
    # the result stands and 2 is slashed (before: member 0 alone named it, no quorum)
    honest = [run.peers[_peer(run, a)].member for j, a in enumerate(view.committee) if j != 2]
    assert all(m is not None and m.server.cheaters == {2} for m in honest)
    assert len(_honest_attestations(run, view, 2)) == 1
    assert row.extra["cheating_servers"] == [2]
    assert row.accepted == row.proposers and row.extra["ledger"]["stands"]
    slashed = {(p, reason) for p, reason, _ in row.extra["ledger"]["slashed"]}
    assert (_peer(run, view.committee[2]), "server") in slashed


def test_a_dispute_told_to_one_member_only_reaches_every_member() -> None:
    # Prepare: member 2 alters its share of client 0 and disputes it, telling only the proposer
    # and member 0; the proposer answers no dispute
    run = _run()

    def setup(view: RoundView) -> None:
        run.peers[_peer(run, view.committee[2])].behaviour = Behaviour(
            tamper_consistency=True, dispute_only_to=0)
        run.peers[_peer(run, view.proposers[0])].behaviour = Behaviour(withhold_reveal=True)

    # Execute
    view, row = _round(run, setup)
    # Assert: member 0 forwarded the signed DISPUTE, so every member knows 2 asked; no reveal
    # came, so every member blames the client (before: member 0 blamed the client, the
    # others member 2, and the attestations differed)
    honest = [run.peers[_peer(run, a)].member for j, a in enumerate(view.committee) if j != 2]
    assert all(m is not None and (0, 2) in m.asked and m.server.cheaters <= {2}
               for m in honest)
    assert len(_honest_attestations(run, view, 2)) == 1
    reasons = {r["peer"]: r["reason"] for r in row.rejected}
    assert reasons == {_peer(run, view.proposers[0]): Reject.INCONSISTENT_SHARING.value}
    assert row.extra["ledger"]["stands"]


def test_a_reveal_sent_to_one_member_only_is_judged_by_every_member() -> None:
    # Prepare: member 2 alters its share of client 0 and disputes it; the proposer reveals
    # member 2's envelope to member 0 only
    run = _run()

    def setup(view: RoundView) -> None:
        run.peers[_peer(run, view.committee[2])].behaviour = Behaviour(
            tamper_consistency=True, dispute_own=True)
        run.peers[_peer(run, view.proposers[0])].behaviour = Behaviour(reveal_only_to=0)

    # Execute
    view, row = _round(run, setup)
    # Assert: member 0 forwarded the signed REVEAL: every member judges member 2's share
    # against the committed envelope, names 2 and keeps the client (before: the members
    # without the reveal rejected the client at the deadline)
    honest = [run.peers[_peer(run, a)].member for j, a in enumerate(view.committee) if j != 2]
    assert all(m is not None and m.server.cheaters == {2} for m in honest)
    assert len(_honest_attestations(run, view, 2)) == 1
    assert row.accepted == row.proposers and row.rejected == []
    assert row.extra["cheating_servers"] == [2] and row.extra["ledger"]["stands"]
