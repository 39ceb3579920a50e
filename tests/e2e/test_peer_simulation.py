"""The secure ledger simulation as N peers' state machines (sim/peers.py, protocol/peer.py):
each peer has its own keys and secrets, every byte between peers is a signed message over the
loopback transport, and the chain decides roles, roots and the result."""

from __future__ import annotations

import numpy as np
import pytest

from phalanx.chain.model import Phase
from phalanx.errors import Reject
from phalanx.protocol.messages import Kind, encode, make_signed
from phalanx.protocol.models import hash_model
from phalanx.sim.config import SimConfig
from phalanx.sim.peers import POOL, STAKE, build_peer_run, draw_roles, pump, run_peer_round

ETHER = 10**18


def _cfg(**kw: object) -> SimConfig:
    base: dict[str, object] = dict(peers=12, committee=5, threshold=1, voters=2, rounds=2,
                                   model="logreg", secure=True, ledger="embedded", seed=4,
                                   attack="none", malicious=0.0)
    base.update(kw)
    return SimConfig(**base)  # type: ignore[arg-type]


def test_an_honest_round_every_member_agrees_and_the_model_moves_to_the_settled_hash() -> None:
    # Prepare
    run = build_peer_run(_cfg())
    before = run.fed.global_params.copy()
    # Execute
    row = run_peer_round(run, 1)
    # Assert: every member computed the same output; the chain's model is the candidate
    members = [p.member for p in run.peers if p.member is not None]
    assert len(members) == 5
    outs = [m.output for m in members]
    assert all(np.array_equal(o, outs[0]) for o in outs)
    assert all(m.server.cheaters == set() for m in members)
    info = row.extra["ledger"]
    assert info["stands"] and info["accepted"]
    assert run.ledger.get_round_state().model_hash == hash_model(run.fed.global_params)
    assert not np.array_equal(before, run.fed.global_params)
    assert row.accepted == row.proposers == 5
    assert row.extra["refused_messages"] == []
    # the output is the plaintext rule on the same prepared inputs, within the stated bound
    assert np.abs((run.fed.global_params - before) - outs[0]).max() < 1e-6


def test_each_peer_owns_its_keys_and_secrets_unless_reproducibility_is_asked_for() -> None:
    a, b = build_peer_run(_cfg()), build_peer_run(_cfg())
    addresses = [p.me.address for p in a.peers]
    assert len(set(addresses)) == len(addresses)
    assert set(addresses).isdisjoint(p.me.address for p in b.peers)  # from the OS, not the seed
    assert not a.peers[0].secrets.reproducible
    c, d = build_peer_run(_cfg(reproducible_secrets=True)), build_peer_run(
        _cfg(reproducible_secrets=True))
    assert [p.me.address for p in c.peers] == [p.me.address for p in d.peers]
    assert run_peer_round(c, 1).accuracy == run_peer_round(d, 1).accuracy


def test_broken_peers_are_registered_and_their_uploads_rejected_by_every_member() -> None:
    # Prepare: 3 broken peers among 15 registered; a round where one proposes
    run = build_peer_run(_cfg(peers=12, malformed_peers=3, rounds=6))
    broken = {p.me.address for p in run.peers[12:]}
    assert all(run.ledger.get_stake(a) == STAKE for a in broken)
    # Execute: rounds until a broken peer was a proposer
    for rnd in range(1, 7):
        row = run_peer_round(run, rnd)
        bad = [p for p in row.extra["ledger"]["proposers"] if p >= 12]
        if bad:
            break
    else:
        pytest.skip("no broken peer drawn as a proposer in 6 rounds")
    # Assert: rejected as a bad bundle (more than t members hold an upload that does not open)
    reasons = {r["peer"]: r["reason"] for r in row.rejected}
    assert all(reasons[p] == Reject.BAD_BUNDLE.value for p in bad)
    slashed = {p for p, reason, _ in row.extra["ledger"]["slashed"]}
    assert set(bad) <= slashed
    assert row.accepted == row.proposers - len(bad)


def test_a_forged_or_unelected_message_is_refused_and_named() -> None:
    # Prepare: the roles of round 1, and a voter (no seat on the committee) sending an opening
    run = build_peer_run(_cfg())
    view = draw_roles(run)
    outsider = run.index[view.voters[0]]
    member = run.index[view.committee[0]]
    from phalanx.protocol.peer import RoundOpened, on_event

    for a in view.committee:
        on_event(run.peers[run.index[a]], RoundOpened(view, run.ledger.get_round_state()
                                                      .model_hash))
    msg = make_signed(run.peers[outsider].me, task=view.task, rnd=view.round,
                      kind=Kind.OPENING, receiver=view.committee[0], body=b"\x00" * 5)
    other_round = make_signed(run.peers[run.index[view.committee[1]]].me, task="0x" + "11" * 20,
                              rnd=view.round, kind=Kind.OPENING,
                              receiver=view.committee[0], body=b"\x00" * 5)
    # Execute
    run.endpoints[outsider].send(view.committee[0], msg.header.msg_id, encode(msg))
    run.endpoints[run.index[view.committee[1]]].send(view.committee[0],
                                                     other_round.header.msg_id,
                                                     encode(other_round))
    pump(run)
    # Assert
    got = {(r["from"], r["reason"]) for r in run.refused if r["peer"] == member}
    assert (run.peers[outsider].me.address, Reject.NOT_SELECTED.value) in got
    assert (view.committee[1], Reject.REPLAYED.value) in got
    assert run.ledger.get_round_state().phase == Phase.PROPOSE


def test_stakes_and_pool_are_conserved_over_rounds() -> None:
    cfg = _cfg(rounds=3, malicious=0.25, attack="sign-flip")
    run = build_peer_run(cfg)
    rows = [run_peer_round(run, r) for r in range(1, 4)]
    stakes = rows[-1].extra["ledger"]["stakes"]
    pool = rows[-1].extra["ledger"]["pool_ether"]
    assert abs(sum(stakes) + pool - (len(run.peers) * STAKE + POOL) / ETHER) < 1e-6
    assert all(len(r.extra["ledger"]["proposers"]) == r.proposers for r in rows)
