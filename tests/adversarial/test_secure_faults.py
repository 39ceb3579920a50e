"""Adversarial tests of the secure backend, each with its exact expected outcome (§3.2, §3.4).

Servers: altering a share in any opening is detected; it is identified (and the round completes
with the honest output) when the opening's redundancy allows correction — always for degree-t
openings with m ≥ 3t + 1, and for degree-2t openings when m ≥ 4t + 1; otherwise the round aborts
with "committee-abort". Clients: every invalid input is rejected with the failed check's reason
while every other client is aggregated. Dropouts are erasures.
"""

from __future__ import annotations

import numpy as np
import pytest

from phalanx.attacks.servers import ServerAction, ServerFault, ServerFaults
from phalanx.errors import Reject
from phalanx.mpc.messages import OpeningKind
from phalanx.mpc.parties import SeededSecrets
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.base import Rule
from phalanx.rules.secure import (
    ClientFault,
    FramingEnvelope,
    SecureBackend,
    SecureParams,
    SecureResult,
)

TEST_SECRETS = SeededSecrets(b"T" * 32)
"""Reproducible party secrets: these tests compare runs (and are about the MPC logic)."""


def framed(params: SecureParams) -> SecureBackend:
    """The secure backend with framing-only envelopes (these tests are about the MPC logic)."""
    return SecureBackend(params, envelope=FramingEnvelope, secrets=TEST_SECRETS)


D, N = 600, 5
SEED = b"A" * 32


def _inputs(name: str, seed: int = 0) -> tuple[Rule, RuleContext, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    rule = make_rule(name)
    g0 = rng.standard_normal(D).astype(np.float32)
    ctx = RuleContext(dim=D, reference=g0 if name in ("fltrust", "cc") else None)
    raw = [(g0 + rng.standard_normal(D)).astype(np.float32) for _ in range(N)]
    return rule, ctx, [rule.prepare(r, ctx) for r in raw]


def _run(name: str, m: int, t: int, faults: list[ServerFault] | None = None,
         client_faults: dict[int, ClientFault] | None = None,
         inputs: list[np.ndarray] | None = None) -> tuple[SecureResult, SecureResult]:
    rule, ctx, prepared = _inputs(name)
    prepared = inputs if inputs is not None else prepared
    backend = framed(SecureParams(m=m, t=t))
    honest = backend.aggregate(rule, prepared, ctx, seed=SEED, client_faults=client_faults)
    got = backend.aggregate(rule, prepared, ctx, seed=SEED, client_faults=client_faults,
                            server_faults=ServerFaults(faults or []))
    return honest, got


DEGREE_2T = {OpeningKind.CHECKS, OpeningKind.AGGREGATE}  # for fltrust


@pytest.mark.parametrize("kind", list(OpeningKind))
@pytest.mark.parametrize(("m", "t"), [(5, 1), (9, 2)])
def test_altered_share_is_identified_when_m_at_least_4t_plus_1(kind: OpeningKind, m: int,
                                                               t: int) -> None:
    for server in (range(m) if m == 5 else (0, 4, m - 1)):  # every server position at (5, 1)
        honest, got = _run("fltrust", m, t, [ServerFault(server, kind=kind, position=None)])
        assert got.aborted is None
        assert got.cheating_servers == (server,)
        assert got.aggregate.accepted == honest.aggregate.accepted
        assert np.array_equal(got.aggregate.vector, honest.aggregate.vector)


@pytest.mark.parametrize("kind", list(OpeningKind))
def test_altered_share_with_m_3t_plus_1_aborts_on_degree_2t_and_is_identified_on_degree_t(
        kind: OpeningKind) -> None:
    honest, got = _run("fltrust", 4, 1, [ServerFault(2, kind=kind)])
    if kind in DEGREE_2T:
        assert got.aborted is not None and got.aborted.startswith("committee-abort")
        assert got.cheating_servers == ()
        assert not got.aggregate.vector.any() and got.aggregate.accepted == ()
    else:
        assert got.aborted is None and got.cheating_servers == (2,)
        assert np.array_equal(got.aggregate.vector, honest.aggregate.vector)


@pytest.mark.parametrize("position", range(5))
def test_every_check_position_is_covered(position: int) -> None:
    _, got = _run("fltrust", 5, 1, [ServerFault(1, kind=OpeningKind.CHECKS, position=position)])
    assert got.cheating_servers == (1,) and got.aborted is None


def test_degree_t_aggregate_of_fedavg_is_corrected_even_with_m_3t_plus_1() -> None:
    honest, got = _run("fedavg-nb", 4, 1, [ServerFault(3, kind=OpeningKind.AGGREGATE,
                                                       position=123)])
    assert got.cheating_servers == (3,) and got.aborted is None
    assert np.array_equal(got.aggregate.vector, honest.aggregate.vector)


def test_equivocating_server_towards_one_receiver_is_identified() -> None:
    _, got = _run("rsa", 5, 1, [ServerFault(0, kind=OpeningKind.AGGREGATE,
                                            receivers=frozenset({2}))])
    assert got.cheating_servers == (0,)


def test_masked_sharing_identifies_a_cheater_in_every_opening_kind() -> None:
    rule, ctx, prepared = _inputs("fltrust")
    backend = framed(SecureParams(m=5, t=1, sharing="masked"))
    honest = backend.aggregate(rule, prepared, ctx, seed=SEED)
    for kind in OpeningKind:
        got = backend.aggregate(rule, prepared, ctx, seed=SEED,
                                server_faults=ServerFaults([ServerFault(4, kind=kind)]))
        assert got.cheating_servers == (4,) and got.aborted is None
        assert np.array_equal(got.aggregate.vector, honest.aggregate.vector)


def test_two_cheaters_with_t_2_are_both_identified() -> None:
    honest, got = _run("cc", 9, 2, [ServerFault(1), ServerFault(6, delta=12345)])
    assert got.cheating_servers == (1, 6) and got.aborted is None
    assert np.array_equal(got.aggregate.vector, honest.aggregate.vector)


@pytest.mark.parametrize(("name", "fault", "reason"), [
    ("fltrust", ClientFault.WRONG_TRUST_WEIGHT, Reject.TRUST_WEIGHT),
    ("fltrust", ClientFault.BAD_REMAINDER, Reject.REMAINDER),
    ("fltrust", ClientFault.NON_BINARY_BITS, Reject.NOT_BINARY),
    ("fedavg-nb", ClientFault.NON_BINARY_BITS, Reject.NOT_BINARY),
    ("rsa", ClientFault.NON_BINARY_BITS, Reject.SIGN_DOMAIN),
    ("fltrust", ClientFault.INCONSISTENT_SHARING, Reject.INCONSISTENT_SHARING),
    ("rsa", ClientFault.INCONSISTENT_SHARING, Reject.INCONSISTENT_SHARING),
    ("cc", ClientFault.INCONSISTENT_SHARING, Reject.INCONSISTENT_SHARING),
    ("fedavg-nb", ClientFault.WRAP_AROUND, Reject.PROJECTION),
    ("fltrust", ClientFault.WRAP_AROUND, Reject.PROJECTION),
    ("fltrust", ClientFault.UNCOMMITTED_BUNDLE, Reject.BAD_BUNDLE),
    ("rsa", ClientFault.UNCOMMITTED_BUNDLE, Reject.BAD_BUNDLE),
    ("fltrust", ClientFault.GARBAGE_BUNDLE, Reject.BAD_BUNDLE),
    ("fltrust", ClientFault.SHORT_VECTOR, Reject.BAD_BUNDLE),
    ("rsa", ClientFault.SHORT_VECTOR, Reject.BAD_BUNDLE),
])
@pytest.mark.parametrize("sharing", ["seeded", "masked"])
def test_cheating_client_is_rejected_with_the_right_reason(name: str, fault: ClientFault,
                                                           reason: Reject, sharing: str) -> None:
    rule, ctx, prepared = _inputs(name)
    res = framed(SecureParams(sharing=sharing)).aggregate(rule, prepared, ctx, seed=SEED,
                                                                 client_faults={2: fault})
    assert [(r.index, r.reason) for r in res.aggregate.rejected] == [(2, reason)]
    assert res.aggregate.accepted == (0, 1, 3, 4)
    assert res.cheating_servers == () and res.aborted is None
    others = rule.aggregate([prepared[i] for i in (0, 1, 3, 4)], ctx)
    assert np.abs(res.aggregate.vector - others.vector).max() < 1e-2


def test_wrap_around_vector_passes_the_field_norm_check_but_not_the_projection() -> None:
    from phalanx.mpc import field as F
    from phalanx.mpc.prg import Prg
    from phalanx.rules.secure import make_circuit

    rule, ctx, prepared = _inputs("fedavg-nb")
    circuit = make_circuit(rule, ctx, SecureParams(), N)
    x = circuit.encode(prepared[0], Prg(SEED))  # type: ignore[attr-defined]
    wrapped = circuit.wrap_around(x)  # type: ignore[attr-defined]
    assert F.dot(wrapped, wrapped) == F.dot(x, x)  # Σx² mod p is unchanged ...
    assert np.abs(F.centered(wrapped)).max() > 2**58  # ... by huge coordinates


@pytest.mark.parametrize(("name", "bad", "reason"), [
    ("fedavg-nb", lambda v: v * 1.5, Reject.NORM_BOUND),
    ("cc", lambda v: v * 3.0, Reject.NORM_BOUND),
    ("fltrust", lambda v: v * 1.2, Reject.NORM_RANGE),
    ("rsa", lambda v: np.where(np.arange(v.size) == 3, 2.0, v).astype(np.float32),
     Reject.SIGN_DOMAIN),
    ("fltrust", lambda v: np.full_like(v, np.nan), Reject.NON_FINITE),
    ("rsa", lambda v: v[:-1], Reject.WRONG_LENGTH),
])
def test_invalid_input_is_rejected_like_the_plaintext_rule(name: str, bad: object,
                                                           reason: Reject) -> None:
    rule, ctx, prepared = _inputs(name)
    prepared[1] = bad(prepared[1])  # type: ignore[operator]
    res = framed(SecureParams()).aggregate(rule, prepared, ctx, seed=SEED)
    assert [(r.index, r.reason) for r in res.aggregate.rejected] == [(1, reason)]
    assert res.aggregate.accepted == rule.aggregate(prepared, ctx).accepted


@pytest.mark.parametrize(("m", "t", "drops", "ok"), [
    (5, 1, (1,), True), (5, 1, (0, 4), True), (5, 1, (0, 2, 4), False),
    (4, 1, (3,), True), (4, 1, (0, 3), False), (9, 2, (2, 7), True),
])
def test_dropouts_are_erasures_until_too_few_shares_remain(m: int, t: int,
                                                           drops: tuple[int, ...],
                                                           ok: bool) -> None:
    faults = [ServerFault(j, ServerAction.DROP) for j in drops]
    honest, got = _run("fltrust", m, t, faults)
    if ok:
        assert got.aborted is None
        assert np.array_equal(got.aggregate.vector, honest.aggregate.vector)
        assert got.stats["dropped_servers"] == list(drops)
    else:
        assert got.aborted is not None and got.aborted.startswith("committee-abort")
        assert not got.aggregate.vector.any()


@pytest.mark.parametrize("fault", [ClientFault.UNCOMMITTED_BUNDLE, ClientFault.GARBAGE_BUNDLE])
def test_bad_bundles_are_rejected_through_real_envelopes_and_blame_no_server(
        fault: ClientFault) -> None:
    # Prepare: real sealing, so the commitment is checked while the envelope is decrypted
    from phalanx.net.envelope import x25519_envelope

    rule, ctx, prepared = _inputs("fltrust")
    backend = SecureBackend(SecureParams(), envelope=x25519_envelope, secrets=TEST_SECRETS)
    # Execute
    res = backend.aggregate(rule, prepared, ctx, seed=SEED, client_faults={3: fault})
    # Assert
    assert [(r.index, r.reason) for r in res.aggregate.rejected] == [(3, Reject.BAD_BUNDLE)]
    assert res.aggregate.accepted == (0, 1, 2, 4)
    assert res.cheating_servers == () and res.aborted is None


def test_a_bad_bundle_found_after_a_streamed_pass_is_rolled_back_exactly() -> None:
    """The flipped byte sits in the second of three chunks of the streamed vector: the servers
    have accumulated the client's (wrong) chunks before the envelope's tag and commitment
    fail, and must take exactly that contribution out again."""
    from phalanx.mpc.stream import CHUNK
    from phalanx.net.envelope import x25519_envelope

    d = 2 * CHUNK + 500
    rng = np.random.default_rng(7)
    g0 = (rng.standard_normal(d) / np.sqrt(d)).astype(np.float32)
    rule = make_rule("fltrust", nu=1.0)
    ctx = RuleContext(dim=d, reference=g0)
    prepared = [rule.prepare(g0 + (rng.standard_normal(d) / np.sqrt(d)).astype(np.float32), ctx)
                for _ in range(N)]
    backend = SecureBackend(SecureParams(), envelope=x25519_envelope, secrets=TEST_SECRETS)
    res = backend.aggregate(rule, prepared, ctx, seed=SEED,
                            client_faults={3: ClientFault.UNCOMMITTED_BUNDLE})
    assert [(r.index, r.reason) for r in res.aggregate.rejected] == [(3, Reject.BAD_BUNDLE)]
    others = rule.aggregate([prepared[i] for i in (0, 1, 2, 4)], ctx)
    assert np.abs(res.aggregate.vector - others.vector).max() < 1e-4
