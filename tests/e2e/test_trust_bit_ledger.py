"""The fltrust trust bit through the per-peer protocol and the contract (docs/economics.md):
a sign-flipped proposer's valid input (weight 0) is attested in neither list and not paid;
with --no-trust-bit every valid input is accepted and paid, as before."""

from __future__ import annotations

from phalanx.sim.config import SimConfig
from phalanx.sim.peers import build_peer_run, run_peer_round


def _cfg(**kw: object) -> SimConfig:
    base: dict[str, object] = dict(peers=12, committee=5, threshold=1, voters=2, rounds=2,
                                   model="logreg", secure=True, ledger="model", seed=3,
                                   attack="sign-flip", malicious=0.4, voting_attack=False)
    base.update(kw)
    return SimConfig(**base)  # type: ignore[arg-type]


def _round(cfg: SimConfig) -> tuple[dict[str, int], set[int], set[int], set[str]]:
    """One round: proposer address → index, the zero-trust and accepted proposer indices
    (as every member attests them) and the rewarded addresses."""
    run = build_peer_run(cfg)
    row = run_peer_round(run, 1)
    members = [p.member for p in run.peers if p.member is not None]
    view = members[0].view
    assert all(m.zero_trust == members[0].zero_trust for m in members)
    settlement = run.settlement
    assert settlement is not None and settlement.accepted
    assert row.zero_trust == len(members[0].zero_trust)
    index = {a: c for c, a in enumerate(view.proposers)}
    accepted = {c for c, v in members[0].verdicts.items() if v is None} - members[0].zero_trust
    assert row.accepted == len(accepted)
    return index, set(members[0].zero_trust), accepted, set(settlement.rewards)


def test_zero_trust_proposers_are_in_neither_list_and_unpaid() -> None:
    cfg = _cfg()
    assert cfg.reveals_trust_bit  # the default for secure fltrust ledger runs
    index, zero, accepted, rewarded = _round(cfg)
    assert zero, "no sign-flipped proposer drawn with weight 0"
    for address, c in index.items():
        assert (address in rewarded) == (c in accepted)
    assert not zero & accepted


def test_without_the_bit_every_valid_input_is_accepted_and_paid() -> None:
    index, zero, accepted, rewarded = _round(_cfg(trust_bit=False))
    assert zero == set()
    assert accepted == set(index.values())
    assert set(index) <= rewarded


def test_the_option_is_on_exactly_for_secure_fltrust_ledger_runs_and_checked() -> None:
    import pytest

    from phalanx.errors import ConfigError

    assert _cfg().reveals_trust_bit
    assert not _cfg(ledger="none").reveals_trust_bit
    assert not _cfg(rule="fedavg-nb").reveals_trust_bit
    assert not _cfg(trust_bit=False).reveals_trust_bit
    assert _cfg(ledger="none", trust_bit=True).reveals_trust_bit
    with pytest.raises(ConfigError, match="trust_bit=True needs secure=true and rule='fltrust'"):
        _cfg(rule="fedavg-nb", trust_bit=True)
    with pytest.raises(ConfigError, match="trust_bit"):
        _cfg(trust_bit="yes")
