"""One secure aggregation of random updates beside the plaintext rule (``phalanx bench mpc``).

Times: ``server_s`` and ``client_s`` are CPU seconds of the thread that runs every kernel
(other processes' load does not inflate them); the plaintext rule is timed single-threaded
(best of 5: ``plaintext_cpu_s``, CPU; ``plaintext_s``, wall) and once with BLAS's default threads
(``plaintext_multithread_s``, wall). ``server_over_plaintext`` = max server CPU / plaintext CPU.
Updates are generated on the fly from a seed (client i: g_0 + N(0, σ²) noise, so fltrust's trust
weights are meaningful), never held as an n × d matrix by the secure part. The plaintext rule
then runs on the stacked updates in the same process. Peak RSS is read twice: after the secure
part (``peak_rss_secure_mb``, before anything n × d exists) and at the end (``peak_rss_mb``).
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
from threadpoolctl import threadpool_limits

from phalanx.mpc.dealt import choose_scheme
from phalanx.rules import RuleContext, make_rule
from phalanx.rules.base import FloatVec, Rule
from phalanx.rules.secure.backend import EnvelopeFactory, SecureBackend, SecureParams, error_bound

RULE_PARAMS: dict[str, dict[str, Any]] = {
    "fedavg-nb": {"tau": 1.0}, "cc": {"tau": 1.0}, "rsa": {"eta": 1e-3}, "fltrust": {"nu": 1.0},
}


PLAINTEXT_REPEATS = 5
"""The plaintext baseline is the best of 5 runs (noise on a shared VM only ever adds time)."""


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class LazyUpdates(Sequence[FloatVec]):
    """Client i's prepared update, regenerated from its seed on every access (O(d) memory)."""

    def __init__(self, rule: Rule, ctx: RuleContext, n: int, seed: int, noise: float) -> None:
        self.rule, self.ctx, self.n, self.seed, self.noise = rule, ctx, n, seed, noise
        self.prepare_s: dict[int, float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> FloatVec: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[FloatVec]: ...

    def __getitem__(self, i: int | slice) -> FloatVec | Sequence[FloatVec]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.n))]
        rng = np.random.default_rng([self.seed, i])
        base = self.ctx.reference if self.ctx.reference is not None else 0.0
        raw = (base + self.noise * rng.standard_normal(self.ctx.dim, np.float32)).astype(
            np.float32)
        # one at a time: threadpoolctl's limits are process-wide (the backend's workers call
        # this from several threads); else BLAS threads' CPU escapes thread_time
        with self._lock, threadpool_limits(limits=1):
            t0 = time.thread_time()
            out = self.rule.prepare(raw, self.ctx)
            self.prepare_s.setdefault(i, time.thread_time() - t0)
        return out

    def __iter__(self) -> Iterator[FloatVec]:
        return (self[k] for k in range(self.n))


def run_bench(rule_name: str, *, clients: int, dim: int, committee: int, threshold: int,
              envelope: EnvelopeFactory, frac_bits: int = 16, seed: int = 0,
              noise: float = 1.0, sharing: str = "seeded", workers: int = 1,
              spool: bool | None = None, zero: str = "auto") -> dict[str, Any]:
    """Run one secure aggregation and the plaintext rule on the same updates; return metrics.

    ``envelope``: the sealing of bundles (the CLI passes ``net.envelope.x25519_envelope``).
    """
    rule = make_rule(rule_name, **RULE_PARAMS.get(rule_name, {}))
    rng = np.random.default_rng([seed, 1 << 30])
    reference = rng.standard_normal(dim).astype(np.float32) / np.float32(np.sqrt(dim))
    ctx = RuleContext(dim=dim, reference=reference if rule_name in ("fltrust", "cc") else None)
    updates = LazyUpdates(rule, ctx, clients, seed, noise / float(np.sqrt(dim)))
    backend = SecureBackend(SecureParams(m=committee, t=threshold, frac_bits=frac_bits,
                                         sharing=sharing, zero=zero), envelope=envelope,
                             workers=workers, spool=spool)
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    res = backend.aggregate(rule, updates, ctx, seed=seed.to_bytes(32, "big"))
    total_s = time.perf_counter() - t0
    rss_secure = peak_rss_mb()
    stacked = [updates[i] for i in range(clients)]
    walls, cpus = [], []
    with threadpool_limits(limits=1):  # single-threaded, like each simulated server
        for _ in range(PLAINTEXT_REPEATS):
            t1, c1 = time.perf_counter(), time.thread_time()
            plain = rule.aggregate(stacked, ctx)
            walls.append(time.perf_counter() - t1)
            cpus.append(time.thread_time() - c1)
    plaintext_s, plaintext_cpu_s = min(walls), min(cpus)
    t2 = time.perf_counter()
    rule.aggregate(stacked, ctx)
    plaintext_mt_s = time.perf_counter() - t2
    err = float(np.abs(res.aggregate.vector.astype(np.float64) - plain.vector).max())
    bound = error_bound(rule, [stacked[i] for i in plain.accepted], ctx, frac_bits)
    server_s = [float(s) for s in res.stats["server_s"]]
    slowest = int(np.argmax(server_s))
    client_s = dict(res.stats["client_s"])
    client_s["prepare"] = float(np.mean(list(updates.prepare_s.values())))
    upload = float(res.stats["upload_bytes_per_client"])
    return {
        "rule": rule_name, "clients": clients, "dim": dim, "committee": committee,
        "threshold": threshold, "frac_bits": frac_bits, "sharing": sharing,
        "zero": choose_scheme(committee, threshold) if zero == "auto" else zero,
        "workers": workers, "spooled": res.stats["spooled"],
        "plaintext_s": plaintext_s,
        "plaintext_cpu_s": plaintext_cpu_s,
        "plaintext_multithread_s": plaintext_mt_s,
        "plaintext_cpu_runs_s": cpus,
        "client_s": client_s,
        "server_s": server_s,
        "server_s_max": max(server_s),
        "server_breakdown_s": res.stats["server_breakdown_s"][slowest],
        "server_compute_over_warm_plaintext": (
            (res.stats["server_breakdown_s"][slowest]["compute"]
             + res.stats["server_breakdown_s"][slowest]["openings"]
             + res.stats["server_breakdown_s"][slowest]["final"]
             + res.stats["server_breakdown_s"][slowest]["round"]) / min(cpus)),
        "server_over_cold_plaintext": max(server_s) / cpus[0],
        "server_over_plaintext": max(server_s) / plaintext_cpu_s,  # warm (best of 5)
        "total_s": total_s,
        "upload_bytes_per_client": upload,
        "upload_over_float32": upload / (4.0 * dim),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_secure_mb": rss_secure,
        "rss_before_mb": rss_before,
        "max_abs_error": err,
        "error_bound": bound,
        "accepted": len(res.aggregate.accepted),
        "accepted_plaintext": len(plain.accepted),
        "aborted": res.aborted,
        "rounds": res.stats["rounds"],
        "messages": res.stats["messages"],
        "phase_s": res.stats["phase_s"],
    }
