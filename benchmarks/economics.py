"""The incentive layer alone (no ML): does stake drain from malicious peers, and only from them?

Every round runs the real ledger rules through the ``model`` backend (bit-identical to the
contract) with the :class:`~phalanx.chain.driver.RoundDriver`. A fraction η of the peers (and of
the stake; all start equal) is malicious and acts against the task in every role:
- proposer: its update is invalid with probability ``p_invalid`` (the MPC checks reject it and
  the committee reports it: σ_c), otherwise valid but poisoned (it passes the checks);
- the candidate is *bad* when poisoned updates exceed ``robust_frac`` of the accepted ones
  (beyond what the robust rule absorbs), otherwise *good*;
- committee member: cheats with probability ``p_cheat``; up to t cheaters are identified (σ_s)
  and the honest m − t still carry the result; more than t abort the round (no result);
- voter: always votes against the truth. Honest voters judge correctly with probability ``q``.

Reported per η: rounds until every malicious peer's stake is below the minimum (expelled), and
whether any honest peer ends with less than it started with.

    .venv/bin/python benchmarks/economics.py                     # the default grid, plots
    .venv/bin/python benchmarks/economics.py --rounds 200 --json
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account

from phalanx.chain.driver import RoundDriver
from phalanx.chain.ledger import Attestation, Roles, make_ledger
from phalanx.chain.model import Phase, TaskParams, checksum
from phalanx.errors import Reject

ETH = 10**18


@dataclass(frozen=True, slots=True)
class Setting:
    """One economic configuration."""

    name: str
    stake_multiple: int = 4  # initial stake = multiple × min_stake
    sigma_v: int = 1000  # bps
    sigma_c: int = 2000
    sigma_s: int = 5000
    sigma_p: int = 1000
    pool_multiple: int = 2  # reward pool = multiple × total initial stake
    q: float = 0.9
    p_invalid: float = 0.5
    p_cheat: float = 0.5
    robust_frac: float = 0.25


@dataclass
class Behaviour:
    """Per-round decisions of honest and malicious peers (the driver's callbacks)."""

    malicious: set[str]
    s: Setting
    t: int
    rng: random.Random
    plan_round: int = -1
    invalid: set[str] = field(default_factory=set)
    cheaters: list[str] = field(default_factory=list)
    good: bool = True

    def _plan(self, roles: Roles) -> None:
        if self.plan_round == roles.round:
            return
        self.plan_round = roles.round
        bad_props = [p for p in roles.proposers if p in self.malicious]
        self.invalid = {p for p in bad_props if self.rng.random() < self.s.p_invalid}
        accepted = [p for p in roles.proposers if p not in self.invalid]
        poisoned = sum(1 for p in accepted if p in self.malicious)
        self.good = not accepted or poisoned / len(accepted) <= self.s.robust_frac
        self.cheaters = [c for c in roles.committee
                         if c in self.malicious and self.rng.random() < self.s.p_cheat]

    def attest(self, member: str, roles: Roles) -> Attestation | None:
        self._plan(roles)
        if member in self.cheaters or len(self.cheaters) > self.t:
            return None
        rejected = tuple((p, Reject.RANGE_PROOF) for p in roles.proposers if p in self.invalid)
        accepted = tuple(p for p in roles.proposers if p not in self.invalid)
        return Attestation((roles.round + 1).to_bytes(32, "big"), rejected, tuple(self.cheaters),
                           accepted)

    def vote(self, voter: str) -> bool:
        if voter in self.malicious:
            return not self.good
        return self.good if self.rng.random() < self.s.q else not self.good


@dataclass
class Strategic(Behaviour):
    """The strategic adversary of issue 11 against honest peers of which ``lazy`` never
    evaluate and always accept: malicious proposers send valid-but-poisoned inputs (they pass
    every check); malicious voters vote against the truth and reveal only when their revealed
    stake would decide the vote (selective revealers). Defences: audit rounds (the auditor's
    known-bad candidate, revealed after the votes) with probability ``p_audit``, and the fltrust
    trust bit: a poisoned input gets trust weight 0 with probability ``p_zero_trust`` and the
    committee then lists it as not contributing (not paid, sigma_p)."""

    lazy: set[str] = field(default_factory=set)
    p_audit: float = 0.0
    p_zero_trust: float = 0.0
    audit: bool = False
    untrusted: set[str] = field(default_factory=set)
    selective: bool = False
    audit_aware: bool = False

    def _plan(self, roles: Roles) -> None:
        if self.plan_round == roles.round:
            return
        self.plan_round = roles.round
        poisoned = [p for p in roles.proposers if p in self.malicious]
        self.invalid = set()
        self.untrusted = {p for p in poisoned if self.rng.random() < self.p_zero_trust}
        counted = [p for p in roles.proposers if p not in self.untrusted]
        bad = sum(1 for p in counted if p in self.malicious)
        self.good = not self.audit and (not counted or bad / len(counted) <= self.s.robust_frac)
        self.cheaters = []

    def attest(self, member: str, roles: Roles) -> Attestation | None:
        self._plan(roles)
        accepted = tuple(p for p in roles.proposers if p not in self.untrusted)
        return Attestation((roles.round + 1).to_bytes(32, "big"), accepted=accepted)

    def vote(self, voter: str) -> bool:
        if voter in self.lazy:
            return True
        if voter in self.malicious and self.audit_aware and self.audit:
            return False  # it tells the auditor's candidate from its own poison: rejects
        return super().vote(voter)

    def reveals(self, roles: Roles, stake: dict[str, int]) -> object:
        """Selective revealing: open a ballot only when the coalition's revealed stake decides
        the vote (``selective``); under rules where a losing ballot costs less than a withheld
        one (σ_v), the best response is to open every ballot (``selective=False``)."""
        mal = sum(stake[v] for v in roles.voters if v in self.malicious)
        total = sum(stake[v] for v in roles.voters)
        return lambda v, accept: (not self.selective or v not in self.malicious
                                  or 2 * mal > total)


def simulate_strategic(eta: float, *, rounds: int, peers: int = 100, seed: int = 0,
                       lazy_frac: float = 0.3, p_audit: float = 0.3, p_zero_trust: float = 0.9,
                       sigma: int = 3000, sigma_p: int = 6000, sigma_v: int = 2000,
                       stake_multiple: int = 2, weight_cap: float = 2.0,
                       selective: bool = False,
                       audit_aware: bool = False) -> dict[str, object]:
    """One strategic run (model backend); the stakes of malicious, lazy and diligent peers
    (``honest_min_ratio``: the poorest diligent honest peer; lazy peers are meant to lose).
    ``weight_cap``: the task's sortition weight cap in multiples of ``min_stake`` (0: none)."""
    rng = random.Random(seed)
    accounts = [Account.from_key(rng.getrandbits(256).to_bytes(32, "big"))
                for _ in range(peers + 1)]
    stake0 = stake_multiple * ETH
    params = TaskParams(min_stake=ETH, committee_size=5, threshold=1, n_proposers=20,
                        n_voters=11, rounds=rounds, sigma_c=sigma, sigma_v=sigma_v, sigma_p=sigma_p,
                        sigma_m=sigma, registration_blocks=1, weight_cap=round(weight_cap * ETH))
    led = make_ledger("model", params=params, deployer=accounts[0], pool=2 * peers * stake0,
                      genesis_seed=rng.getrandbits(256).to_bytes(32, "big"))
    drv = RoundDriver(led, rng)
    drv.register_all(accounts[1:], [stake0] * peers)
    addrs = [checksum(a.address) for a in accounts[1:]]
    n_bad = round(eta * peers)
    bad = set(addrs[:n_bad])
    lazy = set(addrs[n_bad:n_bad + round(lazy_frac * (peers - n_bad))])
    beh = Strategic(bad, Setting("strategic"), 1, random.Random(seed + 1), lazy=lazy,
                    p_audit=p_audit, p_zero_trust=p_zero_trust, selective=selective,
                    audit_aware=audit_aware)
    expelled_at = None
    for r in range(rounds):
        if sum(1 for a in addrs if led.get_stake(a) >= ETH) < params.seats:
            break
        beh.audit = beh.rng.random() < p_audit
        led.advance_to(Phase.BEACON)
        stakes = dict(drv.get_stakes())
        drv.play_round(vote=beh.vote, attest=beh.attest,
                       reveals_vote=lambda v, a, st=stakes: beh.reveals(led.get_roles(), st)(v, a),
                       audit=(accounts[0], beh.audit))
        st = drv.get_stakes()
        if expelled_at is None and bad and all(st[a] < ETH for a in bad):
            expelled_at = r + 1
    st = drv.get_stakes()
    diligent = [a for a in addrs if a not in bad and a not in lazy]

    def mean(xs: list[str]) -> float:
        return sum(st[a] for a in xs) / len(xs) / stake0 if xs else 0.0

    return {"eta": eta, "rounds": r + 1, "expelled_at": expelled_at,
            "honest_min_ratio": min(st[a] for a in diligent) / stake0,
            "lazy_min_ratio": min((st[a] for a in lazy), default=0) / stake0,
            "lazy_mean_ratio": mean(sorted(lazy)), "diligent_mean_ratio": mean(diligent),
            "malicious_mean_ratio": mean(sorted(bad))}


def main_strategic(rounds: int, seed: int, as_json: bool, **kw: object) -> None:
    """``--adversary strategic``: 100 peers, eta in {0.1, 0.2, 0.3, 0.4}."""
    runs = [simulate_strategic(eta, rounds=rounds, seed=seed, **kw)  # type: ignore[arg-type]
            for eta in (0.1, 0.2, 0.3, 0.4)]
    print("| η | rounds run | expelled after | malicious | lazy honest | diligent honest | "
          "diligent min | lazy min |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['eta']} | {r['rounds']} | {r['expelled_at'] or 'never'} | "
              f"{r['malicious_mean_ratio']:.2f}× | {r['lazy_mean_ratio']:.2f}× | "
              f"{r['diligent_mean_ratio']:.2f}× | {r['honest_min_ratio']:.2f}× | "
              f"{r['lazy_min_ratio']:.2f}× |", flush=True)
    if as_json:
        print(json.dumps({
            "adversary": "strategic", "rounds": rounds, "peers": 100, "options": kw,
            "rounds_to_expel": {str(r["eta"]): r["expelled_at"] for r in runs},
            "honest_min_stake_ratio": min(float(str(r["honest_min_ratio"])) for r in runs),
            "lazy_over_diligent": max(float(str(r["lazy_mean_ratio"]))
                                      / float(str(r["diligent_mean_ratio"])) for r in runs),
            "runs": runs}, sort_keys=True))


def simulate(eta: float, s: Setting, *, rounds: int, peers: int = 100, seed: int = 0
             ) -> dict[str, object]:
    """Run ``rounds`` rounds; returns the stake trajectories and the summary."""
    rng = random.Random(seed)
    accounts = [Account.from_key(rng.getrandbits(256).to_bytes(32, "big"))
                for _ in range(peers + 1)]
    min_stake = ETH
    stake0 = s.stake_multiple * min_stake
    params = TaskParams(min_stake=min_stake, committee_size=5, threshold=1, n_proposers=20,
                        n_voters=11, rounds=rounds, sigma_b=1000, sigma_c=s.sigma_c,
                        sigma_s=s.sigma_s, sigma_v=s.sigma_v, sigma_p=s.sigma_p,
                        registration_blocks=1)
    led = make_ledger("model", params=params, deployer=accounts[0],
                      pool=s.pool_multiple * peers * stake0,
                      genesis_seed=rng.getrandbits(256).to_bytes(32, "big"))
    drv = RoundDriver(led, rng)
    drv.register_all(accounts[1:], [stake0] * peers)
    bad = {checksum(a.address) for a in accounts[1 : 1 + round(eta * peers)]}
    beh = Behaviour(bad, s, params.threshold, random.Random(seed + 1))
    mal_traj, hon_traj, expelled_at = [], [], None
    for r in range(rounds):
        if sum(1 for a in drv.accounts if led.get_stake(a) >= min_stake) < params.seats:
            break  # too few eligible peers for a round
        drv.play_round(vote=beh.vote, attest=beh.attest)
        stakes = drv.get_stakes()
        mal_traj.append(sum(v for a, v in stakes.items() if a in bad) / ETH)
        hon_traj.append(sum(v for a, v in stakes.items() if a not in bad) / ETH)
        if expelled_at is None and all(stakes[a] < min_stake for a in bad):
            expelled_at = r + 1
    stakes = drv.get_stakes()
    honest_final = [v for a, v in stakes.items() if a not in bad]
    return {
        "eta": eta, "setting": s.name, "rounds": len(mal_traj), "expelled_at": expelled_at,
        "malicious_stake": mal_traj, "honest_stake": hon_traj,
        "honest_losers": sum(1 for v in honest_final if v < stake0),
        "honest_min_ratio": min(honest_final) / stake0,
        "honest_mean_ratio": sum(honest_final) / len(honest_final) / stake0,
        "malicious_final_ratio": (mal_traj[-1] * ETH / (len(bad) * stake0)) if bad else 0.0,
    }


SETTINGS = [
    Setting("A: σ_v=10% σ_c=20% σ_p=10%, stake 4×min"),
    Setting("B: σ_v=σ_c=σ_p=30%, stake 2×min", stake_multiple=2, sigma_v=3000,
            sigma_c=3000, sigma_p=3000),
    Setting("C: σ_v=σ_c=30% σ_p=0, stake 2×min", stake_multiple=2, sigma_v=3000,
            sigma_c=3000, sigma_p=0),
    Setting("D: as C, honest voters q=0.7", stake_multiple=2, sigma_v=3000, sigma_c=3000,
            sigma_p=0, q=0.7),
    Setting("E: σ_v=20% σ_c=30% σ_p=0, stake 3×min", stake_multiple=3, sigma_v=2000,
            sigma_c=3000, sigma_p=0),
    Setting("F: as C, honest voters q=0.97", stake_multiple=2, sigma_v=3000, sigma_c=3000,
            sigma_p=0, q=0.97),
]


def plot(results: list[dict[str, object]], path: Path) -> None:
    """Malicious and honest stake per round, one panel per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(str(r["setting"]) for r in results))
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for r in (x for x in results if x["setting"] == name):
            mal, hon = r["malicious_stake"], r["honest_stake"]
            assert isinstance(mal, list) and isinstance(hon, list)
            line = ax.plot([m / (m + h) for m, h in zip(mal, hon, strict=True)],
                           label=f"η={r['eta']}")[0]
            if r["expelled_at"] is not None:
                ax.axvline(int(str(r["expelled_at"])), color=line.get_color(), ls=":", lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("round")
        ax.set_ylabel("malicious share of stake")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default="docs/img/economics_stakes.png")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--adversary", choices=["simple", "strategic"], default="simple")
    ap.add_argument("--selective", action="store_true",
                    help="strategic: malicious voters open a ballot only when it decides the vote "
                         "(the best response to the old rule; today's is to open every ballot)")
    ap.add_argument("--audit-aware", action="store_true",
                    help="strategic: malicious voters tell audit candidates apart and reject them")
    ap.add_argument("--sigma-v", type=int, default=2000, help="strategic: sigma_v (bps)")
    ap.add_argument("--sigma-p", type=int, default=6000, help="strategic: sigma_p (bps)")
    ap.add_argument("--p-audit", type=float, default=0.3, help="strategic: audit frequency")
    ap.add_argument("--weight-cap", type=float, default=2.0,
                    help="strategic: sortition weight cap in multiples of min_stake "
                         "(0: none; default: the bonded stake)")
    args = ap.parse_args()
    if args.adversary == "strategic":
        main_strategic(150 if args.rounds == 300 else args.rounds, args.seed, args.json,
                       selective=args.selective, audit_aware=args.audit_aware,
                       sigma_v=args.sigma_v, sigma_p=args.sigma_p, p_audit=args.p_audit,
                       weight_cap=args.weight_cap)
        return
    results = []
    print("| setting | η | rounds run | expelled after (rounds) | malicious stake left | "
          "honest peers below start | honest min / mean stake |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s in SETTINGS:
        for eta in (0.1, 0.2, 0.3, 0.4):
            r = simulate(eta, s, rounds=args.rounds, seed=args.seed)
            results.append(r)
            print(f"| {s.name} | {eta} | {r['rounds']} | {r['expelled_at'] or 'not within run'} | "
                  f"{float(str(r['malicious_final_ratio'])):.2f}× | {r['honest_losers']} | "
                  f"{float(str(r['honest_min_ratio'])):.2f}× / "
                  f"{float(str(r['honest_mean_ratio'])):.2f}× |", flush=True)
    plot(results, Path(args.plot))
    print(f"\nplot: {args.plot}")
    if args.json:
        slim = [{k: v for k, v in r.items() if k not in ("malicious_stake", "honest_stake")}
                for r in results]
        print(json.dumps(slim, sort_keys=True))


if __name__ == "__main__":
    main()
