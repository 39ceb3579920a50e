"""A voter's steps in one round, from its own point of view (protocol.md §4; FLock's vote).

Once a result stands on chain the voter fetches the candidate by its hash, evaluates it and the
current model on its own held-out data, and commits to a ballot with a salt from its own
secrets: accept iff candidate ≥ (1 − ε) · current. It reveals only in the reveal window, and
reveals the ballot it committed (a commitment binds it). A candidate it cannot fetch, or whose
bytes are not the attested hash, is rejected: a voter never accepts what it could not judge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from phalanx.chain.model import is_accept_vote
from phalanx.errors import ConfigError
from phalanx.mpc.parties import SecretSource
from phalanx.protocol.actions import CommitVote, RevealVote
from phalanx.protocol.identity import Identity
from phalanx.protocol.round import RoundView

Fetch = Callable[[bytes], "np.ndarray | None"]
Evaluate = Callable[[np.ndarray], float]


@dataclass(slots=True)
class VoterState:
    """One voter in one round."""

    me: Identity
    view: RoundView
    secrets: SecretSource
    epsilon_bps: int
    accept: bool | None = None
    salt: bytes = b""
    scores: tuple[float, float] | None = None


def process_vote_opened(state: VoterState, candidate: bytes, current: bytes, fetch: Fetch,
                        evaluate: Evaluate) -> CommitVote:
    """Judge the attested candidate against the current model and commit to the ballot."""
    if state.accept is not None:
        raise ConfigError("this voter already committed its ballot this round")
    new, old = fetch(candidate), fetch(current)
    if new is None or old is None:
        state.accept = False
    else:
        state.scores = (evaluate(new), evaluate(old))
        state.accept = is_accept_vote(state.scores[0], state.scores[1], state.epsilon_bps)
    state.salt = state.secrets.token(state.me.address, "vote-salt", state.view.session)
    return CommitVote(state.accept, state.salt)


def process_reveal_opened(state: VoterState) -> RevealVote | None:
    """Reveal the committed ballot (nothing, if it never committed)."""
    if state.accept is None:
        return None
    return RevealVote(state.accept, state.salt)
