"""Unit tests of the committee engine's parameters, channel accounting and backend contract."""

from __future__ import annotations

import numpy as np
import pytest

from phalanx.errors import ConfigError
from phalanx.mpc.channel import LocalChannel
from phalanx.mpc.parties import SeededSecrets
from phalanx.mpc.shamir import seeded_servers, validate_committee
from phalanx.net.envelope import x25519_envelope
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.secure import FramingEnvelope, SecureBackend, SecureParams, make_circuit

TEST_SECRETS = SeededSecrets(b"T" * 32)
"""Reproducible party secrets: these tests compare runs (and are about the MPC logic)."""


def framed(params: SecureParams) -> SecureBackend:
    """The secure backend with framing-only envelopes (these tests are about the MPC logic)."""
    return SecureBackend(params, envelope=FramingEnvelope, secrets=TEST_SECRETS)


def test_committee_parameters_are_validated_with_named_values() -> None:
    with pytest.raises(ConfigError, match="m=3 needs m >= 3t\\+1=4"):
        validate_committee(3, 1)
    with pytest.raises(ConfigError, match="t=0"):
        SecureParams(m=4, t=0)
    with pytest.raises(ConfigError, match="rows=12"):
        SecureParams(rows=12)
    with pytest.raises(ConfigError, match="frac_bits=30"):
        SecureParams(frac_bits=30)


def test_incompatible_rule_and_overflowing_configuration_are_refused() -> None:
    ctx = RuleContext(dim=1_000_000)
    with pytest.raises(ConfigError, match="no secure form"):
        make_circuit(make_rule("krum"), ctx, SecureParams(), 10)
    with pytest.raises(ConfigError, match="wrap mod p; lower frac_bits"):
        make_circuit(make_rule("fedavg-nb", tau=10.0), ctx, SecureParams(), 10)
    make_circuit(make_rule("fedavg-nb", tau=10.0), ctx, SecureParams(frac_bits=12), 10)


def test_local_channel_counts_bytes_messages_and_rounds() -> None:
    ch = LocalChannel()
    ch.send("a", "b", b"12345")
    ch.send("b", "a", b"1")
    ch.end_round()
    assert ch.receive("b") == [("a", b"12345")] and ch.receive("b") == []
    assert (ch.bytes_sent["a"], ch.bytes_received["a"], ch.messages, ch.rounds) == (5, 1, 2, 1)


def test_seeded_servers_rotate_with_the_client() -> None:
    assert [seeded_servers(5, 1, i) for i in range(6)] == [(0,), (1,), (2,), (3,), (4,), (0,)]
    assert seeded_servers(9, 2, 8) == (0, 8)


def test_upload_is_m_minus_t_packed_vectors_and_runs_are_deterministic() -> None:
    d, n, m, t = 100_000, 3, 5, 1
    rule = make_rule("fedavg-nb")
    rng = np.random.default_rng(0)
    ctx = RuleContext(dim=d)
    prepared = [rule.prepare(rng.standard_normal(d).astype(np.float32), ctx) for _ in range(n)]
    backend = SecureBackend(SecureParams(m=m, t=t), envelope=x25519_envelope,
                            secrets=TEST_SECRETS)
    a = backend.aggregate(rule, prepared, ctx, seed=b"u" * 32, client_ids=[10, 20, 30])
    b = backend.aggregate(rule, prepared, ctx, seed=b"u" * 32, client_ids=[10, 20, 30])
    assert np.array_equal(a.aggregate.vector, b.aggregate.vector)
    ratio = a.stats["upload_bytes_per_client"] / (4 * d)
    assert (m - t) * 61 / 32 < ratio < (m - t) * 61 / 32 * 1.02
    assert a.stats["bytes_sent"]["client:20"] == a.stats["upload_bytes_per_client"]
    assert a.stats["rounds"] > n and set(a.stats["client_s"]) == {"witness", "share", "seal"}
    assert len(a.stats["server_s"]) == m


def test_bad_seed_and_ids_are_refused() -> None:
    rule, ctx = make_rule("rsa"), RuleContext(dim=4)
    with pytest.raises(ConfigError, match="32"):
        framed(SecureParams()).aggregate(rule, [np.zeros(4, np.float32)], ctx, seed=b"x")
    with pytest.raises(ConfigError, match="distinct"):
        framed(SecureParams()).aggregate(rule, [np.zeros(4, np.float32)] * 2, ctx,
                                                seed=b"x" * 32, client_ids=[1, 1])


def test_masked_sharing_meets_the_upload_bound() -> None:
    d, m, t = 100_000, 5, 1
    rule = make_rule("fltrust")
    rng = np.random.default_rng(1)
    ctx = RuleContext(dim=d, reference=rng.standard_normal(d).astype(np.float32))
    prepared = [rule.prepare(rng.standard_normal(d).astype(np.float32), ctx) for _ in range(2)]
    res = framed(SecureParams(m=m, t=t, sharing="masked")).aggregate(
        rule, prepared, ctx, seed=b"m" * 32)
    ratio = res.stats["upload_bytes_per_client"] / (4 * d)
    assert 61 / 32 < ratio < 2.0 < m - t + 1
    assert res.stats["bytes_received"]["server:3"] > 2 * 61 / 8 * d  # each server downloads c


@pytest.mark.parametrize("sharing", ["seeded", "masked"])
def test_spooled_and_threaded_rounds_equal_the_in_memory_serial_round(sharing: str) -> None:
    # Prepare: fltrust over 11 clients (3 batches, so threaded batches overlap), three of
    # them cheating in different steps (rejected, so their rollbacks are deferred), and a
    # server that alters every consistency share it sends (identified at the first client)
    from phalanx.attacks.servers import ServerFault
    from phalanx.mpc.messages import OpeningKind
    from phalanx.rules.secure import ClientFault

    d = 5_000
    rule = make_rule("fltrust")
    rng = np.random.default_rng(2)
    ctx = RuleContext(dim=d, reference=rng.standard_normal(d).astype(np.float32))
    prepared = [rule.prepare(rng.standard_normal(d).astype(np.float32), ctx) for _ in range(11)]
    faults = {2: ClientFault.WRONG_TRUST_WEIGHT, 5: ClientFault.INCONSISTENT_SHARING,
              9: ClientFault.UNCOMMITTED_BUNDLE}
    params = SecureParams(sharing=sharing)

    def run(**kw: object) -> object:
        backend = SecureBackend(params, envelope=x25519_envelope, secrets=TEST_SECRETS, **kw)  # type: ignore[arg-type]
        return backend.aggregate(
            rule, prepared, ctx, seed=b"s" * 32, client_faults=faults,
            server_faults=[ServerFault(3, kind=OpeningKind.CONSISTENCY)])

    # Execute
    serial = run(spool=False)
    spooled = run(spool=True)
    threaded = run(spool=True, workers=3)
    # Assert: same output and verdicts; the spool was used and is gone
    for other in (spooled, threaded):
        assert np.array_equal(other.aggregate.vector, serial.aggregate.vector)  # type: ignore[attr-defined]
        assert other.aggregate.rejected == serial.aggregate.rejected  # type: ignore[attr-defined]
        assert other.stats["spooled"] and not serial.stats["spooled"]  # type: ignore[attr-defined]
    assert [r.index for r in serial.aggregate.rejected] == [2, 5, 9]  # type: ignore[attr-defined]
    assert serial.cheating_servers == threaded.cheating_servers == (3,)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="workers=0"):
        SecureBackend(params, envelope=x25519_envelope, workers=0)


def test_spool_store_round_trips_bytes_and_cleans_up() -> None:
    from phalanx.rules.secure.spool import SpoolStore

    with SpoolStore() as store:
        store.put((1, 2, 1), b"abc")
        store.put((1, 3, 1), b"")
        assert bytes(store.get((1, 2, 1)) or b"?") == b"abc"
        assert store.get((1, 3, 1)) == b"" and store.get((9, 9, 9)) is None
        store.discard((1, 2, 1))
        store.discard((1, 2, 1))  # absent: no error
        assert store.get((1, 2, 1)) is None
        root = store.root
    assert not root.exists()
