"""A peer's one-time warm-up, before it registers (docs/network.md, "Warm-up").

A fresh process pays once for what every later round re-uses: torch's first forward and
backward passes, numba loading the field kernels from its cache, the first secure circuit.
Measured on 8 loopback peers (2 cores), a peer's first round in a role took 3–9 s more than the
next; the phase waits for its slowest peer, so every first-role round stalled the network.
A long-running peer should pay that before it joins, not inside a round's deadlines.

The warm-up runs each role's computation once on the initial model, as a made-up round
(``WARM_ROUND``), and throws every result away: local training and the rule's ``prepare``
(proposer), the rule's reference and one in-process secure aggregation of the circuit at the
task's (m, t) over two copies of that input (member), an evaluation (voter). Nothing is sent
and nothing is stored; the aggregation's secrets come from the OS like a round's, and its
inputs are the peer's own. Round results do not depend on it: training and reference seeds
are per round, and the round's model and previous update are set again when a round opens.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from phalanx.net.envelope import x25519_envelope
from phalanx.node.work import NodeWork
from phalanx.protocol.peer import Task
from phalanx.rules.secure.backend import SecureBackend

log = logging.getLogger("phalanx.node")

#: the made-up round number of the warm-up (no real round has it: rounds count from 0)
WARM_ROUND = -1


def warm_up(work: NodeWork, task: Task) -> float:
    """Run each role's computation once on the initial model; the seconds it took."""
    start = time.perf_counter()
    params = work.initial.copy()
    previous = work.previous_update.copy()
    try:
        update = work.train(params, WARM_ROUND)
        ctx = work.context(params, WARM_ROUND)
        prepared = task.rule.prepare(update, ctx)
        if np.all(np.isfinite(prepared)):
            SecureBackend(task.params, envelope=x25519_envelope).aggregate(
                task.rule, [prepared, prepared], ctx, seed=os.urandom(32))
        work.evaluate(params)
    finally:  # as it was: the first round starts from the same state with or without it
        work.fed.global_params = work.initial.copy()
        work.previous_update = previous
    took = time.perf_counter() - start
    log.info("warmed up in %.2f s (training, reference, one secure aggregation, evaluation)",
             took)
    return took
