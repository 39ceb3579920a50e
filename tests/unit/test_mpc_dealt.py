"""Member-dealt zero sharings (mpc.dealt, issue 13): honest path, each way to cheat, the
scheme choice, and the driver against the plaintext rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from phalanx.errors import AggregationError, ConfigError
from phalanx.mpc import dealt as D
from phalanx.mpc.channel import LocalChannel
from phalanx.mpc.committee import Committee
from phalanx.mpc.field import P, combine_rows, lagrange_coeffs
from phalanx.mpc.messages import pack61
from phalanx.mpc.parties import SeededSecrets
from phalanx.mpc.prg import Prg
from phalanx.mpc.shamir import point, reconstruct
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.secure import FramingEnvelope, SecureBackend, SecureParams, make_circuit

SECRETS = SeededSecrets(b"D" * 32)


def _shares(dealings: list[D.Dealing], m: int, t: int, length: int) -> dict[int, np.ndarray]:
    return {j: np.stack([D.share_of(d.payloads[j], dealer=d.dealer, receiver=j, m=m, t=t,
                                    label=d.label, length=length) for d in dealings])
            for j in range(m)}


def _nonzero_dealing(dealer: int, m: int, t: int, label: str, length: int,
                     constant: int) -> D.Dealing:
    """A cheating dealer: degree-2t polynomials through (0, constant), committed honestly."""
    honest = D.deal(dealer, m=m, t=t, label=label, length=length, prg=Prg(b"c" * 32))
    held = D.seeded_holders(dealer, m, t)
    n = D.batch_length(length, m, t) + 1
    rows = np.vstack([np.full((1, n), constant, np.uint64)] + [
        D.share_of(honest.payloads[h], dealer=dealer, receiver=h, m=m, t=t, label=label,
                   length=length)[None] for h in held])
    payloads = dict(honest.payloads)
    for j in (j for j in range(m) if j not in held):
        w = lagrange_coeffs([0] + [point(h) for h in held], point(j))
        payloads[j] = bytes(32) + bytes([2]) + pack61(combine_rows([w], rows)[0])
    return replace(honest, payloads=payloads, commitments={
        j: D.commitment(dealer, j, label, p) for j, p in payloads.items()})


@pytest.mark.parametrize(("m", "t"), [(4, 1), (7, 2), (13, 4)])
def test_extracted_masks_are_zero_sharings_of_degree_2t(m: int, t: int) -> None:
    # Prepare
    length = 3 * (m - t) + 2
    dealings = [D.deal(i, m=m, t=t, label="x", length=length, prg=Prg(bytes([i + 1]) * 32))
                for i in range(m)]
    # Execute
    sh = _shares(dealings, m, t, length)
    out = np.stack([D.extract(sh[j], m=m, t=t, length=length) for j in range(m)])
    # Assert
    assert out.shape == (m, length) and D.is_zero_sharing(list(range(m)), out, t)
    assert not D.is_zero_sharing(list(range(m)), out + np.uint64(1), t)
    assert np.all(reconstruct(list(range(m)), out, degree=2 * t) == 0)
    assert len(set(out[0].tolist())) == length  # not degenerate


def test_a_dealer_with_a_nonzero_constant_is_named() -> None:
    m, t, length = 7, 2, 11
    dealings = [D.deal(i, m=m, t=t, label="x", length=length, prg=Prg(bytes([i + 1]) * 32))
                for i in range(m)]
    dealings[3] = _nonzero_dealing(3, m, t, "x", length, constant=5)
    coin = D.check_coin(b"s", "x", [d.commitments for d in dealings])
    sh = _shares(dealings, m, t, length)
    v = {j: D.check_value(sh[j][3], coin, 3) for j in range(m)}
    # the opened check is a degree-2t codeword but not 0 at 0
    assert reconstruct(list(range(m)), np.array([[v[j]] for j in range(m)], np.uint64),
                       degree=2 * t)[0] != 0
    assert D.blame(dealings[3].payloads, dealings[3].commitments, dealer=3, m=m, t=t,
                   label="x", length=length, coin=coin, reported={0: v}) == ((3,), True)


def test_a_dealer_that_refuses_or_reveals_other_payloads_is_named_and_a_liar_is_named() -> None:
    m, t, length = 7, 2, 4
    d = D.deal(0, m=m, t=t, label="x", length=length, prg=Prg(b"a" * 32))
    coin = D.check_coin(b"s", "x", [d.commitments])
    truth = {j: D.check_value(s[0], coin, 0) for j, s in _shares([d], m, t, length).items()}
    kw = {"dealer": 0, "m": m, "t": t, "label": "x", "length": length, "coin": coin}
    assert D.blame(None, d.commitments, reported={1: truth}, **kw) == ((0,), True)
    forged = {**d.payloads, 4: d.payloads[5]}
    assert D.blame(forged, d.commitments, reported={1: truth}, **kw) == ((0,), True)
    lied = {**truth, 6: (truth[6] + 1) % P}
    assert D.blame(d.payloads, d.commitments, reported={1: lied, 2: truth}, **kw) == ((6,),
                                                                                      False)
    assert D.blame(d.payloads, d.commitments, reported={1: truth}, **kw) == ((), False)


def test_malformed_payloads_are_refused_with_the_dealer_named() -> None:
    d = D.deal(0, m=7, t=2, label="x", length=4, prg=Prg(b"a" * 32))
    with pytest.raises(ConfigError, match="dealer 0 is malformed for receiver 5"):
        D.share_of(d.payloads[5][:-8], dealer=0, receiver=5, m=7, t=2, label="x", length=4)
    with pytest.raises(ConfigError, match="receiver 1"):  # a seed where a vector belongs
        D.share_of(d.payloads[5], dealer=0, receiver=1, m=7, t=2, label="x", length=4)
    with pytest.raises(ConfigError, match="m=4 >= 2t\\+1=5"):
        D.deal(0, m=4, t=2, label="x", length=4, prg=Prg(b"a" * 32))


def test_scheme_choice_is_by_cost_and_dealt_cost_is_polynomial() -> None:
    assert D.choose_scheme(4, 1) == "cdi" and D.choose_scheme(13, 4) == "dealt"
    assert D.cost("dealt", 64, 21) < 2 * 64 and D.cost("cdi", 31, 10) > 1e8
    with pytest.raises(ConfigError, match="'pcg'"):
        D.cost("pcg", 5, 1)
    with pytest.raises(ConfigError, match="zero='pcg'"):
        SecureParams(zero="pcg")


def _committee(m: int, t: int) -> Committee:
    rule, ctx = make_rule("fltrust"), RuleContext(dim=8, reference=np.ones(8, np.float32))
    env = FramingEnvelope([bytes([j]) * 32 for j in range(m)], lambda *a: bytes(32))
    return Committee(make_circuit(rule, ctx, SecureParams(m=m, t=t), 4), m=m, t=t,
                     channel=LocalChannel(), sealer=env.seal, streamer=env.open_stream,
                     session=b"s" * 32, beacon=b"b" * 32, secrets=SECRETS, zero="dealt")


def test_driver_masks_are_zero_sharings_and_a_cheating_dealer_is_named_and_excluded() -> None:
    # honest
    c = _committee(7, 2)
    c.deal_zeros("x", 12)
    masks = np.stack([s.zero_masks["x"] for s in c.servers])
    assert D.is_zero_sharing(list(range(7)), masks, 2) and not c.cheaters
    # server 3 deals a nonzero constant (its commitments match what it sent)
    c = _committee(7, 2)
    cheat = c.servers[3]
    real = cheat.deal_zero

    def nonzero(label: str, length: int) -> object:
        real(label, length)
        bad = _nonzero_dealing(3, 7, 2, label, length, constant=1)
        cheat.dealings[label] = bad
        cheat.dealt[label][3] = D.share_of(bad.payloads[3], dealer=3, receiver=3, m=7, t=2,
                                           label=label, length=length)
        return dict(bad.commitments), [(r, cheat.sealer(r, p, cheat._dealt_context(label, 3),
                                                        None))
                                       for r, p in bad.payloads.items() if r != 3]

    cheat.deal_zero = nonzero  # type: ignore[method-assign]  # the adversary's dealing
    c.deal_zeros("x", 12)  # named, excluded, dealt again by the others
    assert c.cheaters == {3} and "not a committed zero sharing" in c.evidence[3]
    honest = [j for j in range(7) if j != 3]
    masks = np.stack([c.servers[j].zero_masks["x"] for j in honest])
    assert D.is_zero_sharing(honest, masks, 2)


def test_driver_complaint_about_an_unopenable_payload_is_resolved_publicly() -> None:
    c = _committee(4, 1)
    real = c.servers[1].deal_zero

    def garbled(label: str, length: int) -> object:
        commits, sealed = real(label, length)
        return commits, [(r, b"garbage" if r == 2 else env) for r, env in sealed]

    c.servers[1].deal_zero = garbled  # type: ignore[method-assign]  # a bad envelope
    c.deal_zeros("x", 5)  # the dealer reveals server 2's payload, which is the committed one
    masks = np.stack([s.zero_masks["x"] for s in c.servers])
    assert D.is_zero_sharing(list(range(4)), masks, 1) and not c.cheaters


@pytest.mark.parametrize("rule_name", ["fltrust", "cc"])
def test_dealt_and_cdi_rounds_agree_with_the_plaintext_rule(rule_name: str) -> None:
    d, n = 300, 6
    rule = make_rule(rule_name)
    rng = np.random.default_rng(1)
    ctx = RuleContext(dim=d, reference=rng.standard_normal(d).astype(np.float32) / 20)
    prepared = [rule.prepare((rng.standard_normal(d) / 20).astype(np.float32), ctx)
                for _ in range(n)]
    plain = rule.aggregate(prepared, ctx).vector
    for zero in ("cdi", "dealt"):
        res = SecureBackend(SecureParams(m=7, t=2, zero=zero), envelope=FramingEnvelope,
                            secrets=SECRETS).aggregate(rule, prepared, ctx, seed=b"r" * 32)
        assert res.aborted is None and len(res.aggregate.accepted) == n
        assert np.abs(res.aggregate.vector - plain).max() < 1e-3


def test_driver_member_lying_about_a_check_value_is_named_not_the_dealer() -> None:
    c = _committee(7, 2)
    liar = c.servers[5]
    real = liar.zero_check_values

    def lie(label: str, coin: bytes) -> np.ndarray:
        out = real(label, coin).copy()
        out[1] = (out[1] + 1) % P  # about dealer 1's (honest) dealing
        return out

    liar.zero_check_values = lie  # type: ignore[method-assign]  # the adversary's opening
    c.deal_zeros("x", 9)
    assert c.cheaters == {5} and "dealing its shares do not give" in c.evidence[5]
    honest = [j for j in range(7) if j != 5]
    assert D.is_zero_sharing(honest, np.stack([c.servers[j].zero_masks["x"] for j in honest]), 2)


def test_driver_aborts_when_more_than_t_members_are_named() -> None:
    c = _committee(4, 1)
    for j in (1, 2):
        real = c.servers[j].zero_check_values
        c.servers[j].zero_check_values = (  # type: ignore[method-assign]
            lambda label, coin, real=real: (real(label, coin) + np.uint64(1)) % np.uint64(P))
    with pytest.raises(AggregationError, match="more than t=1 servers identified"):
        c.deal_zeros("x", 3)


def test_cdi_is_refused_where_its_key_count_explodes() -> None:
    from phalanx.mpc.przs import check_cdi_size

    check_cdi_size(13, 4)  # 715 keys: slow but runs
    with pytest.raises(ConfigError, match="m=31, t=10 needs C\\(m, t\\)=44352165 keys"):
        check_cdi_size(31, 10)
    with pytest.raises(ConfigError, match="zero='dealt'"):
        Committee(make_circuit(make_rule("cc"), RuleContext(dim=4), SecureParams(m=31, t=10), 2),
                  m=31, t=10, channel=LocalChannel(), sealer=lambda *a: b"",
                  streamer=lambda *a: None,  # type: ignore[arg-type, return-value]
                  session=b"s" * 32, beacon=b"b" * 32, secrets=SECRETS, zero="cdi").setup()
