"""fltrust's trust bit b = [w > 0] (docs/economics.md, "fltrust trust bit"; docs/mpc.md).

With ``SecureParams.trust_bit`` the committee opens one bit per client: a valid input with
trust weight 0 (a sign-flipped update) is counted with weight 0 but is in neither the accepted
nor the rejected list, so it is not paid; a client that lies about the bit is rejected
(TRUST_BIT); with the bit off the old behaviour stays (every valid input accepted).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx.attacks.servers import ServerFault, ServerFaults
from phalanx.errors import ConfigError, Reject
from phalanx.mpc import field as F
from phalanx.mpc.circuit import ClientShares, check_width, contributes
from phalanx.mpc.messages import OpeningKind
from phalanx.mpc.parties import SeededSecrets
from phalanx.mpc.prg import Prg
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.base import Rule
from phalanx.rules.secure import (
    ClientFault,
    FramingEnvelope,
    SecureBackend,
    SecureParams,
    error_bound,
    make_circuit,
)
from phalanx.rules.secure.fltrust import FLTrustCircuit

TEST_SECRETS = SeededSecrets(b"B" * 32)
"""Reproducible party secrets: these tests are about the MPC logic."""
D, N = 400, 6
SEED = b"S" * 32
FLIPPED = (1, 4)
"""The sign-flipped (poisoned) inputs: cos(x, g_0) < 0, so w = 0."""


def framed(params: SecureParams) -> SecureBackend:
    return SecureBackend(params, envelope=FramingEnvelope, secrets=TEST_SECRETS)


def _inputs(seed: int = 0) -> tuple[Rule, RuleContext, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    rule = make_rule("fltrust")
    g0 = rng.standard_normal(D).astype(np.float32)
    ctx = RuleContext(dim=D, reference=g0)
    raw = [(g0 + rng.standard_normal(D)).astype(np.float32) for _ in range(N)]
    for i in FLIPPED:
        raw[i] = -raw[i]
    return rule, ctx, [rule.prepare(r, ctx) for r in raw]


@pytest.mark.parametrize(("sharing", "zero"), [("seeded", "cdi"), ("masked", "cdi"),
                                               ("seeded", "dealt")])
def test_zero_trust_inputs_are_neither_accepted_nor_rejected(sharing: str, zero: str) -> None:
    rule, ctx, prepared = _inputs()
    on = framed(SecureParams(trust_bit=True, sharing=sharing, zero=zero)).aggregate(
        rule, prepared, ctx, seed=SEED)
    plain = rule.aggregate(prepared, ctx)
    assert on.aborted is None and on.cheating_servers == ()
    assert on.aggregate.accepted == (0, 2, 3, 5)
    assert on.aggregate.zero_trust == FLIPPED
    assert on.aggregate.rejected == ()
    # the output is the plaintext rule's over every valid input (weight-0 inputs add nothing)
    bound = error_bound(rule, prepared, ctx, SecureParams().frac_bits)
    assert float(np.abs(on.aggregate.vector - plain.vector).max()) <= bound
    assert on.aggregate.revealed["trust_weight_sum"] == pytest.approx(
        plain.revealed["trust_weight_sum"], rel=1e-3)


def test_the_bit_changes_only_the_lists_not_the_output() -> None:
    rule, ctx, prepared = _inputs()
    off = framed(SecureParams()).aggregate(rule, prepared, ctx, seed=SEED)
    on = framed(SecureParams(trust_bit=True)).aggregate(rule, prepared, ctx, seed=SEED)
    # bit off: the old behaviour, every valid input accepted (and paid)
    assert off.aggregate.accepted == tuple(range(N)) and off.aggregate.zero_trust == ()
    assert on.aggregate.accepted == (0, 2, 3, 5)
    assert np.array_equal(on.aggregate.vector, off.aggregate.vector)
    assert on.aggregate.revealed == off.aggregate.revealed


def test_every_input_of_weight_zero_gives_the_zero_update_and_no_one_is_accepted() -> None:
    rule, ctx, prepared = _inputs()
    flipped = [-prepared[i] for i in (0, 2, 3)]
    got = framed(SecureParams(trust_bit=True)).aggregate(rule, flipped, ctx, seed=SEED)
    assert got.aggregate.accepted == () and got.aggregate.rejected == ()
    assert got.aggregate.zero_trust == (0, 1, 2)
    assert not got.aggregate.vector.any()
    assert got.aggregate.revealed["trust_weight_sum"] == 0.0


@pytest.mark.parametrize(("idx", "fault"), [
    (1, ClientFault.FLIPPED_TRUST_BIT),  # w = 0 claims b = 1 (to be paid)
    (2, ClientFault.FLIPPED_TRUST_BIT),  # w > 0 claims b = 0
    (2, ClientFault.NON_BINARY_TRUST_BIT),  # b = 2
    (1, ClientFault.NON_BINARY_TRUST_BIT),
])
def test_a_client_lying_about_its_trust_bit_is_rejected(idx: int, fault: ClientFault) -> None:
    rule, ctx, prepared = _inputs()
    got = framed(SecureParams(trust_bit=True)).aggregate(rule, prepared, ctx, seed=SEED,
                                                         client_faults={idx: fault})
    assert [(r.index, r.reason) for r in got.aggregate.rejected] == [(idx, Reject.TRUST_BIT)]
    assert got.aggregate.accepted == tuple(i for i in (0, 2, 3, 5) if i != idx)
    assert got.aggregate.zero_trust == tuple(i for i in FLIPPED if i != idx)
    others = [i for i in range(N) if i != idx]
    plain = rule.aggregate([prepared[i] for i in others], ctx)
    assert np.abs(got.aggregate.vector - plain.vector).max() < 1e-2


@pytest.mark.parametrize(("m", "identified"), [(5, True), (4, False)])
def test_a_server_altering_its_share_of_the_bit_is_identified_or_aborts(
        m: int, identified: bool) -> None:
    rule, ctx, prepared = _inputs()
    circuit = make_circuit(rule, ctx, SecureParams(m=m, trust_bit=True), N)
    bit_at = check_width(circuit) - 1  # the bit's share follows the check values
    backend = framed(SecureParams(m=m, trust_bit=True))
    honest = backend.aggregate(rule, prepared, ctx, seed=SEED)
    got = backend.aggregate(rule, prepared, ctx, seed=SEED, server_faults=ServerFaults(
        [ServerFault(1, kind=OpeningKind.CHECKS, position=bit_at)]))
    if identified:  # degree 2t with m >= 4t + 1: corrected, the lists are the honest ones
        assert got.cheating_servers == (1,) and got.aborted is None
        assert got.aggregate.accepted == honest.aggregate.accepted == (0, 2, 3, 5)
        assert got.aggregate.zero_trust == honest.aggregate.zero_trust == FLIPPED
    else:  # m = 3t + 1: detected, not locatable
        assert got.aborted is not None and got.aborted.startswith("committee-abort")
        assert got.aggregate.accepted == () and got.aggregate.zero_trust == ()


def test_trust_bit_is_refused_for_other_rules_and_needs_a_bool() -> None:
    rule = make_rule("fedavg-nb")
    with pytest.raises(ConfigError, match="trust_bit=True applies to fltrust only"):
        make_circuit(rule, RuleContext(dim=8), SecureParams(trust_bit=True), 3)
    with pytest.raises(ConfigError, match="trust_bit=1 must be a bool"):
        SecureParams(trust_bit=1)  # type: ignore[arg-type]
    rule, ctx, prepared = _inputs()
    with pytest.raises(ConfigError, match="needs fltrust with trust_bit=True"):
        framed(SecureParams()).aggregate(rule, prepared, ctx, seed=SEED,
                                         client_faults={0: ClientFault.FLIPPED_TRUST_BIT})


# -- the bit's identities on the scalars alone (one party holding the values: degree 0) -------
def _bit_check(circuit: FLTrustCircuit, w: int, b: int) -> int:
    """The TRUST_BIT check value for a client whose witness says weight w and bit b (with the
    honest bits of w − b mod 2^k_w, as a lying client would send), computed in the clear."""
    circuit.pub.weights["lam"] = Prg(b"L" * 32).field_elements(12)
    s1 = np.zeros(circuit.n_scalars1(), np.uint64)
    s1[2], s1[4] = w % F.P, b % F.P
    off = 1 + circuit.n_extra + circuit.n_norm * circuit.k_norm
    off += 2 * circuit.k_u + circuit.k_w + 2 * circuit.k_r
    low = (w - b) % (1 << circuit.k_w)
    s1[off:off + circuit.k_w] = [(low >> k) & 1 for k in range(circuit.k_w)]
    shares = ClientShares((), s1, np.zeros(0, np.uint64))
    return circuit.extra_checks(shares, 0, 0)[2]


@settings(max_examples=200, deadline=None)
@given(w=st.integers(0, (1 << 17) - 1), b=st.integers(-3, 5))
def test_the_bit_check_passes_exactly_for_b_equal_to_w_positive(w: int, b: int) -> None:
    rule, ctx, _ = _inputs()
    circuit = make_circuit(rule, ctx, SecureParams(trust_bit=True), N)
    assert isinstance(circuit, FLTrustCircuit) and circuit.k_w == 17
    assert (_bit_check(circuit, w, b) == 0) == (b == int(w > 0))


def test_contributes_reads_only_the_trust_bit() -> None:
    rule, ctx, _ = _inputs()
    on = make_circuit(rule, ctx, SecureParams(trust_bit=True), N)
    off = make_circuit(rule, ctx, SecureParams(), N)
    assert on.client_reveals == ("trust_bit",) and off.client_reveals == ()
    assert contributes(on, [1]) and not contributes(on, [0]) and contributes(off, [])
