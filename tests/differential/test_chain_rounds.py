"""Whole rounds with evidence on the embedded contract and on the model backend: identical.

This is what licenses ``benchmarks/economics.py`` to simulate on the model backend."""

from __future__ import annotations

import random

from eth_account import Account

from phalanx.chain.driver import RoundDriver
from phalanx.chain.ledger import Attestation, Roles, make_ledger
from phalanx.chain.model import TaskParams
from phalanx.errors import Reject

ETH = 10**18
PARAMS = TaskParams(min_stake=ETH, committee_size=5, threshold=1, n_proposers=8, n_voters=7,
                    rounds=6, sigma_b=1500, sigma_c=2500, sigma_s=5000, sigma_v=3000,
                    sigma_p=700, registration_blocks=1)
PEERS = [Account.from_key((i + 9000).to_bytes(32, "big")) for i in range(40)]


def _attest(member: str, roles: Roles) -> Attestation | None:
    if roles.round % 3 == 2:  # two members silent, one dissenting: no quorum, void round
        if member in roles.committee[:2]:
            return None
        if member == roles.committee[2]:
            return Attestation(b"\x0d" * 32)
    if member == roles.committee[-1]:
        return None
    posted = [p for p in roles.proposers if _posts(p)]
    bad = posted[1:3]
    accepted = tuple(p for p in posted[:-1] if p not in bad)  # the last one undelivered
    return Attestation(b"\x0a" * 32, ((bad[0], Reject.PROJECTION), (bad[1], Reject.NOT_BINARY)),
                       (roles.committee[-1],), accepted)


def _posts(p: str) -> bool:
    return int(p, 16) % 7 != 0


def _play(backend: str):
    led = make_ledger(backend, params=PARAMS, deployer=PEERS[0], pool=30 * ETH,
                      genesis_seed=b"\x33" * 32)
    drv = RoundDriver(led, random.Random(11))
    drv.register_all(PEERS[1:], [ETH * (1 + i % 6) + i for i in range(39)])
    out = [drv.play_round(vote=lambda v, r=r: r != 1 and (int(v, 16) + r) % 3 != 0, attest=_attest,
                          reveals=lambda p, r=r: (int(p, 16) + r) % 9 != 0,
                          posts=_posts)
           for r in range(5)]
    return out, dict(drv.get_stakes()), led.get_round_state()


def test_rounds_with_evidence_agree_bit_for_bit():
    # Execute
    chain_rounds, chain_stakes, chain_state = _play("embedded")
    model_rounds, model_stakes, model_state = _play("model")
    # Assert
    assert chain_rounds == model_rounds
    assert chain_stakes == model_stakes
    assert (chain_state.pool, chain_state.seed, chain_state.model_hash) == (
        model_state.pool, model_state.seed, model_state.model_hash)
    settled = [r.settlement for r in chain_rounds]
    assert any(s.stands and s.accepted for s in settled)
    assert any(s.stands and not s.accepted for s in settled)
    assert any(not s.stands for s in settled)
    reasons = {reason.name for s in settled for _, reason, _ in s.slashes}
    assert {"BEACON", "CLIENT", "SERVER", "PROPOSER", "MEMBER"} <= reasons
    assert "VOTER" not in reasons  # losing an ordinary vote is not slashed (issue 11)
