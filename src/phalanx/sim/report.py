"""What a run did, for a person: a self-contained ``report.html`` and a short text summary.

Both read only the run directory (``config.toml``, ``metrics.jsonl``, ``summary.json``), and read
it defensively: a field a given simulator does not write (``extra.ledger`` without a ledger,
``extra.protocol`` before the per-party protocol layer) is simply left out. The HTML inlines its
plots as base64 PNGs and loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from phalanx.errors import ConfigError

Row = Mapping[str, Any]
#: the plots of a run report, in order: (id, title)
RUN_PLOTS = (
    ("accuracy", "Test accuracy per round"),
    ("stake", "Stake per peer over rounds (honest vs malicious)"),
    ("rejections", "Rejected inputs by reason"),
    ("trust", "Trust-weight sum per round (revealed)"),
    ("roles", "Roles per round"),
)


# ---------------------------------------------------------------------------------------------
# reading a run directory


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """``(config, metrics rows, summary)`` of a run directory; ConfigError if it is none."""
    import tomllib

    if not (run_dir / "metrics.jsonl").is_file() and not (run_dir / "summary.json").is_file():
        raise ConfigError(f"run_dir={run_dir} is not a run directory (no metrics.jsonl, no "
                          "summary.json)")
    try:
        config = tomllib.loads((run_dir / "config.toml").read_text())
    except (OSError, ValueError):
        config = {}
    rows: list[dict[str, Any]] = []
    if (run_dir / "metrics.jsonl").is_file():
        for line in (run_dir / "metrics.jsonl").read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {}
    return config, rows, summary if isinstance(summary, dict) else {}


def get_path(row: Row, *keys: str) -> Any:
    """``row[k0][k1]…`` or None when any level is missing or not a mapping."""
    value: Any = row
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def number(value: Any) -> float:
    """A float for plotting (NaN for null or non-numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def get_proposer_ids(row: Row) -> list[int] | None:
    """Who proposed in this round, when the simulator recorded ids."""
    for keys in (("proposer_ids",), ("extra", "protocol", "proposers"),
                 ("extra", "ledger", "proposers")):
        value = get_path(row, *keys)
        if isinstance(value, list):
            return [int(v) for v in value if isinstance(v, int)]
    return None


def get_slashes(row: Row) -> list[tuple[int, str, float]]:
    """``(peer, reason, ether)`` slashes of a round (ledger runs)."""
    out = []
    for item in get_path(row, "extra", "ledger", "slashed") or []:
        if isinstance(item, list | tuple) and len(item) >= 3:
            out.append((int(item[0]), str(item[1]), number(item[2])))
    return out


def get_servers(row: Row) -> list[int]:
    """Committee members identified as cheating this round."""
    for keys in (("extra", "cheating_servers"), ("extra", "protocol", "cheating_servers")):
        value = get_path(row, *keys)
        if isinstance(value, list):
            return [int(v) for v in value if isinstance(v, int)]
    return []


def get_stakes(row: Row) -> dict[int, float] | None:
    """Every peer's stake (ether) after this round: ``extra.ledger.stakes`` as a mapping
    peer → ether or a list indexed by peer (None when the simulator did not record it)."""
    value = get_path(row, "extra", "ledger", "stakes")
    if isinstance(value, Mapping):
        return {int(k): number(v) for k, v in value.items() if str(k).lstrip("-").isdigit()}
    if isinstance(value, list):
        return {i: number(v) for i, v in enumerate(value)}
    return None


def get_adversaries(row: Row) -> Mapping[str, Any]:
    """The round's injected protocol-level adversaries (``extra.adversaries``), or {}."""
    value = get_path(row, "extra", "adversaries")
    return value if isinstance(value, Mapping) else {}


def ids_text(values: Any) -> str:
    """``[1, 3]`` → ``1 3``; "—" for nothing."""
    if not isinstance(values, list | tuple) or not values:
        return "—"
    return " ".join(str(v) for v in values)


# ---------------------------------------------------------------------------------------------
# the text summary printed at the end of a run


def describe_run(run_dir: Path, *, max_rounds: int = 10) -> list[str]:
    """A few lines: accuracy, proposers, rejections, servers, slashes, rewards, stakes."""
    config, rows, summary = load_run(run_dir)
    malicious = set(summary.get("malicious_peers") or [])
    lines = [f"status: {summary.get('status', 'unknown')}, {len(rows)}/"
             f"{summary.get('rounds_planned', config.get('rounds', '?'))} rounds; accuracy: "
             f"final {fmt(summary.get('final_accuracy'))}, best "
             f"{fmt(summary.get('best_accuracy'))}"]
    if summary.get("final_attack_success_rate") is not None:
        lines.append(f"backdoor success rate: {fmt(summary['final_attack_success_rate'])}")
    lines.append(f"malicious peers: {sorted(malicious) or 'none'}")
    lines += describe_proposers(rows, malicious, max_rounds)
    lines.append(describe_rejections(rows))
    aborted = sum(1 for r in rows if get_path(r, "extra", "aborted"))
    lines.append(f"servers identified as cheating: {describe_servers(rows, malicious)}"
                 + (f"; committee aborted {aborted} round(s)" if aborted else ""))
    lines += describe_adversaries(rows)
    lines += describe_ledger(rows, malicious)
    if config.get("reproducible_secrets"):
        lines.append("secrets: derived from the seed (reproducible, so NOT secret)")
    if summary.get("non_finite"):
        lines.append(f"non-finite values (written as null): {summary['non_finite']}")
    return lines


def describe_servers(rows: Sequence[Row], malicious: set[int]) -> str:
    """The identified committee seats; with a ledger the peers holding them (* malicious)."""
    seats = sorted({s for r in rows for s in get_servers(r)})
    peers: set[int] = set()
    for row in rows:
        committee = get_path(row, "extra", "ledger", "committee")
        if not isinstance(committee, list):
            return str(seats) if seats else "none"
        peers |= {int(committee[s]) for s in get_servers(row) if 0 <= s < len(committee)}
    if not peers:
        return "none"
    return "peers " + " ".join(f"{p}{'*' if p in malicious else ''}" for p in sorted(peers))


def describe_proposers(rows: Sequence[Row], malicious: set[int], max_rounds: int) -> list[str]:
    """Per round who proposed (ids when recorded, else the counts)."""
    if not rows:
        return ["proposers: no round completed"]
    ids = [get_proposer_ids(r) for r in rows]
    if all(i is None for i in ids):
        counts = {(r.get("proposers"), r.get("malicious_proposers")) for r in rows}
        if len(counts) == 1:
            n, bad = counts.pop()
            return [f"proposers: {n} per round ({bad} malicious)"]
        return ["proposers per round: " + ", ".join(
            f"r{r.get('round')}: {r.get('proposers')} ({r.get('malicious_proposers')} bad)"
            for r in rows[:max_rounds]) + (" …" if len(rows) > max_rounds else "")]
    out = ["proposers (* malicious):"]
    for row, who in list(zip(rows, ids, strict=True))[:max_rounds]:
        marked = " ".join(f"{p}{'*' if p in malicious else ''}" for p in who or [])
        out.append(f"  round {row.get('round')}: {marked}")
    if len(rows) > max_rounds:
        out.append(f"  … {len(rows) - max_rounds} more rounds in metrics.jsonl")
    return out


def describe_adversaries(rows: Sequence[Row]) -> list[str]:
    """Injected server and client faults against what the committee found; abort reasons and
    refused uploads (nothing when the run had none)."""
    out = []
    attack = next((get_adversaries(r)["server_attack"] for r in rows
                   if "server_attack" in get_adversaries(r)), None)
    if attack is not None:
        corrupt = sum(len(get_adversaries(r).get("corrupt_servers") or []) for r in rows)
        named = sum(len(set(get_servers(r)) & set(get_adversaries(r).get("corrupt_servers")
                                                  or [])) for r in rows)
        dropped = sum(len(get_path(r, "extra", "dropped_servers") or []) for r in rows)
        out.append(f"server attack {attack}: {corrupt} corrupt seat(s) over {len(rows)} "
                   f"round(s); identified {named}, silent (erasures) {dropped}")
    fault = next((get_adversaries(r)["client_fault"] for r in rows
                  if "client_fault" in get_adversaries(r)), None)
    if fault is not None:
        faulty = sorted({p for r in rows for p in get_adversaries(r).get("faulty_clients") or []})
        caught = sorted({j.get("peer") for r in rows for j in r.get("rejected") or []
                         if j.get("peer") in faulty})
        out.append(f"client fault {fault}: faulty peers {faulty or 'none'}; rejected "
                   f"{caught or 'none'}")
    reasons = [(r.get("round"), str(get_path(r, "extra", "aborted"))) for r in rows
               if get_path(r, "extra", "aborted")]
    if reasons:
        rnd, why = reasons[0]
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        out.append(f"abort, round {rnd}{more}: {why[:200]}")
    refused = [(r.get("round"), v) for r in rows
               for v in get_path(r, "extra", "protocol_violations") or []
               if isinstance(v, Mapping)]
    if refused:
        out.append("refused uploads: " + ", ".join(
            f"round {rnd} peer {v.get('client')} ({v.get('reason')})" for rnd, v in refused[:5])
            + (" …" if len(refused) > 5 else ""))
    return out


def describe_rejections(rows: Sequence[Row]) -> str:
    reasons: Counter[str] = Counter()
    peers: set[int] = set()
    for row in rows:
        for rej in row.get("rejected") or []:
            reasons[str(rej.get("reason"))] += 1
            if isinstance(rej.get("peer"), int):
                peers.add(rej["peer"])
    if not reasons:
        return "rejected inputs: none"
    by_reason = ", ".join(f"{k} ×{v}" for k, v in reasons.most_common())
    return f"rejected inputs: {sum(reasons.values())} ({by_reason}) from peers {sorted(peers)}"


def describe_ledger(rows: Sequence[Row], malicious: set[int] | None = None) -> list[str]:
    """Slashes, rewards and stakes from ``extra.ledger`` (nothing without a ledger); with
    per-peer stakes recorded, the rewards split honest / malicious and the stakes at the start.
    """
    malicious = malicious or set()
    ledger_rows = [r for r in rows if isinstance(get_path(r, "extra", "ledger"), Mapping)]
    if not ledger_rows:
        return ["ledger: none (no slashing or rewards in this run)"]
    slashed: Counter[tuple[int, str]] = Counter()
    amount: dict[tuple[int, str], float] = {}
    for row in ledger_rows:
        for peer, reason, ether in get_slashes(row):
            slashed[(peer, reason)] += 1
            amount[(peer, reason)] = amount.get((peer, reason), 0.0) + ether
    text = ", ".join(f"peer {p}{'*' if p in malicious else ''} ({why}) ×{n}, "
                     f"{amount[(p, why)]:.2f} ETH" for (p, why), n in sorted(slashed.items()))
    rewarded = sum(number(get_path(r, "extra", "ledger", "rewarded_ether")) or 0.0
                   for r in ledger_rows)
    last = ledger_rows[-1]
    accepted = sum(1 for r in ledger_rows if get_path(r, "extra", "ledger", "accepted"))
    split = reward_split(ledger_rows, malicious, amount)
    start = ""
    if split is not None:
        rewarded_text = (f"rewarded: {rewarded:.2f} ETH in total (honest peers "
                         f"{split[0]:.2f} ETH, malicious peers {split[1]:.2f} ETH)")
        start = f"{split[2]:.2f} → "
        start_bad = f"{split[3]:.2f} → "
    else:
        rewarded_text = f"rewarded: {rewarded:.2f} ETH in total"
        start_bad = ""
    return [
        f"slashed (* malicious): {text or 'nobody'}",
        f"{rewarded_text}; votes accepted {accepted}/{len(ledger_rows)}",
        f"stake{', start →' if start else ''} after round {last.get('round')}: honest "
        f"{start}{fmt(get_path(last, 'extra', 'ledger', 'honest_stake_ether'), 2)} ETH, "
        f"malicious {start_bad}"
        f"{fmt(get_path(last, 'extra', 'ledger', 'malicious_stake_ether'), 2)} ETH",
    ]


def reward_split(ledger_rows: Sequence[Row], malicious: set[int],
                 slashed: Mapping[tuple[int, str], float]
                 ) -> tuple[float, float, float, float] | None:
    """(honest rewards, malicious rewards, honest start stake, malicious start stake), ether,
    derived from the per-peer stakes: reward = final stake − registration stake + slashed
    (every peer registers with sim/chained.STAKE). None when stakes are not recorded."""
    from phalanx.sim.chained import ETHER, STAKE

    final = get_stakes(ledger_rows[-1])
    if final is None:
        return None
    lost: dict[int, float] = {}
    for (peer, _), ether in slashed.items():
        lost[peer] = lost.get(peer, 0.0) + ether
    start = STAKE / ETHER
    gain = {p: s - start + lost.get(p, 0.0) for p, s in final.items()}
    bad = sum(g for p, g in gain.items() if p in malicious)
    n_bad = sum(1 for p in final if p in malicious)
    return (sum(gain.values()) - bad, bad, start * (len(final) - n_bad), start * n_bad)


# ---------------------------------------------------------------------------------------------
# plots


def figure_png(draw: Callable[[Any], None], *, width: float = 6.4,
               height: float = 3.4) -> str:
    """Base64 PNG of one matplotlib axes drawn by ``draw(ax)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    try:
        draw(ax)
        ax.title.set_fontsize(9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def no_data(ax: Any, why: str) -> None:
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_accuracy(rows: Sequence[Row]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        if not rows:
            return no_data(ax, "no round completed")
        rounds = [r.get("round") for r in rows]
        ax.plot(rounds, [number(r.get("accuracy")) for r in rows], marker="o", ms=3,
                label="test accuracy")
        asr = [number(r.get("attack_success_rate")) for r in rows]
        if any(math.isfinite(a) for a in asr):
            ax.plot(rounds, asr, marker="x", ms=3, label="backdoor success rate")
        ax.set(xlabel="round", ylabel="fraction", ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return draw


def draw_stake(rows: Sequence[Row], malicious: set[int]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        ledger = [r for r in rows if isinstance(get_path(r, "extra", "ledger"), Mapping)]
        if not ledger:
            return no_data(ax, "no ledger in this run (--ledger embedded or model)")
        rounds = [r.get("round") for r in ledger]
        per_peer = [get_stakes(r) for r in ledger]
        if all(s is not None for s in per_peer):
            stakes = [s or {} for s in per_peer]
            for p in sorted({p for s in stakes for p in s}):
                ax.plot(rounds, [s.get(p, math.nan) for s in stakes], marker=".", ms=3,
                        color="tab:red" if p in malicious else "tab:blue", alpha=0.6, lw=1)
            ax.plot([], [], color="tab:blue", label="honest peer")
            ax.plot([], [], color="tab:red", label="malicious peer")
        else:
            for key, label, color in (("honest_stake_ether", "honest (total)", "tab:blue"),
                                      ("malicious_stake_ether", "malicious (total)", "tab:red")):
                ax.plot(rounds, [number(get_path(r, "extra", "ledger", key)) for r in ledger],
                        marker="o", ms=3, color=color, label=label)
        ax.set(xlabel="round", ylabel="stake (ETH)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return draw


def draw_rejections(rows: Sequence[Row]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        counts = [Counter(str(j.get("reason")) for j in r.get("rejected") or []) for r in rows]
        reasons = sorted({k for c in counts for k in c})
        if not reasons:
            return no_data(ax, "no input was rejected")
        rounds = [r.get("round") for r in rows]
        bottom = [0] * len(rows)
        for reason in reasons:
            heights = [c.get(reason, 0) for c in counts]
            ax.bar(rounds, heights, bottom=bottom, label=reason)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set(xlabel="round", ylabel="rejected inputs")
        ax.legend(fontsize=8)
    return draw


def draw_trust(rows: Sequence[Row]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        values = [number(get_path(r, "revealed", "trust_weight_sum")) for r in rows]
        if not any(math.isfinite(v) for v in values):
            return no_data(ax, "no trust weights revealed (fltrust only)")
        ax.plot([r.get("round") for r in rows], values, marker="o", ms=3)
        ax.set(xlabel="round", ylabel="Σ trust weights")
        ax.grid(alpha=0.3)
    return draw


def draw_roles(rows: Sequence[Row], malicious: set[int]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        if not rows:
            return no_data(ax, "no round completed")
        rounds = [r.get("round") for r in rows]
        roles: list[tuple[str, Callable[[Row], Any], str]] = [
            ("proposer", get_proposer_ids, "tab:green"),
            ("committee", lambda r: get_path(r, "extra", "ledger", "committee"), "tab:purple"),
            ("voter", lambda r: get_path(r, "extra", "ledger", "voters"), "tab:orange")]
        drawn = False
        for label, read, color in roles:
            xs, ys, edge = [], [], []
            for rnd, row in zip(rounds, rows, strict=True):
                for p in read(row) or []:
                    xs.append(rnd)
                    ys.append(p)
                    edge.append("red" if p in malicious else color)
            if xs:
                drawn = True
                ax.scatter(xs, ys, s=14, c=color, edgecolors=edge, label=label)
        if drawn:
            ax.set(xlabel="round", ylabel="peer id")
            ax.legend(fontsize=8, title="red edge: malicious", title_fontsize=7)
            return None
        ax.plot(rounds, [number(r.get("proposers")) for r in rows], marker="o", ms=3,
                label="proposers")
        ax.plot(rounds, [number(r.get("malicious_proposers")) for r in rows], marker="x", ms=3,
                label="malicious proposers")
        ax.plot(rounds, [number(r.get("accepted")) for r in rows], ls="--", label="accepted")
        ax.set(xlabel="round", ylabel="peers (ids not recorded)")
        ax.legend(fontsize=8)
        return None
    return draw


# ---------------------------------------------------------------------------------------------
# HTML

STYLE = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;
padding:2px 8px;text-align:left}h2{margin-top:1.6em;font-size:18px}img{max-width:100%}
pre{background:#f6f6f6;padding:8px;font-size:12px;white-space:pre-wrap}"""


def html_table(pairs: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(fmt(v))}</td></tr>"
                    for k, v in pairs)
    return f"<table>{cells}</table>"


def html_page(title: str, body: Sequence[str]) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            + "\n".join(body) + "</body></html>\n")


def img(plot_id: str, title: str, png: str) -> str:
    return (f"<h2>{html.escape(title)}</h2><img id='plot-{plot_id}' alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{png}'>")


def render_run_report(run_dir: Path) -> str:
    """The HTML of a run report (see :func:`write_run_report`)."""
    config, rows, summary = load_run(run_dir)
    malicious = set(summary.get("malicious_peers") or [])
    draws = {"accuracy": draw_accuracy(rows), "stake": draw_stake(rows, malicious),
             "rejections": draw_rejections(rows), "trust": draw_trust(rows),
             "roles": draw_roles(rows, malicious)}
    flat_summary = [(k, v) for k, v in summary.items() if not isinstance(v, Mapping | list)]
    body = [
        "<h2 id='summary'>Summary</h2>",
        "<pre>" + html.escape("\n".join(describe_run(run_dir))) + "</pre>",
        html_table(flat_summary),
    ]
    body += [img(pid, title, figure_png(draws[pid])) for pid, title in RUN_PLOTS]
    body += ["<h2 id='config'>Configuration</h2>", html_table(sorted(
        (k, json.dumps(v) if isinstance(v, Mapping) else v) for k, v in config.items()))]
    body += ["<h2>Rounds</h2>", rounds_table(rows)]
    if any(isinstance(get_path(r, "extra", "ledger"), Mapping) for r in rows):
        body += ["<h2 id='ledger'>Ledger per round</h2>", ledger_table(rows, malicious)]
        body += stakes_table(rows, malicious)
    if any(is_secure_row(r) for r in rows):
        body += ["<h2 id='committee'>Secure aggregation per round</h2>",
                 committee_table(rows, malicious)]
    return html_page(f"Phalanx run {run_dir.name}", body)


def rounds_table(rows: Sequence[Row]) -> str:
    head = "<tr><th>round</th><th>accuracy</th><th>loss</th><th>proposers</th>" \
           "<th>accepted</th><th>rejected</th><th>seconds</th></tr>"
    lines = []
    for r in rows:
        rejected = ", ".join(f"{j.get('peer')}: {j.get('reason')}" for j in r.get("rejected") or [])
        seconds = sum(number(v) for v in (r.get("seconds") or {}).values())
        lines.append("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in (
            r.get("round"), r.get("accuracy"), r.get("loss"), r.get("proposers"),
            r.get("accepted"), rejected or "—", round(seconds, 2))) + "</tr>")
    return f"<table>{head}{''.join(lines)}</table>"


def table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table of escaped cells."""
    top = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in cells)
                   + "</tr>" for cells in rows)
    return f"<table>{top}{body}</table>"


def marked(values: Any, malicious: set[int]) -> str:
    """Peer ids, malicious ones starred."""
    if not isinstance(values, list | tuple) or not values:
        return "—"
    return " ".join(f"{v}{'*' if v in malicious else ''}" for v in values)


def ledger_table(rows: Sequence[Row], malicious: set[int]) -> str:
    """Per round: proposers, committee, voters and ballots, the settlement, slashes, rewards,
    stakes and pool (from ``extra.ledger``; * marks malicious peers)."""
    out = []
    for r in rows:
        led = get_path(r, "extra", "ledger")
        if not isinstance(led, Mapping):
            continue
        ballots = led.get("ballots")
        ballots = ballots if isinstance(ballots, Mapping) else {}
        votes = " ".join(f"{p}{'*' if int(p) in malicious else ''}:{'yes' if v else 'no'}"
                         for p, v in ballots.items() if str(p).isdigit()) or "—"
        slashes = ", ".join(f"{p}{'*' if p in malicious else ''} {why} {ether:.2f}"
                            for p, why, ether in get_slashes(r)) or "—"
        out.append((r.get("round"), marked(get_proposer_ids(r), malicious),
                    marked(led.get("committee"), malicious), votes,
                    "yes" if led.get("stands") else "no",
                    "yes" if led.get("accepted") else "no", slashes,
                    led.get("rewarded_ether"), led.get("honest_stake_ether"),
                    led.get("malicious_stake_ether"), led.get("pool_ether")))
    return table(("round", "proposers", "committee", "ballots", "stands", "accepted",
                  "slashed (ETH)", "rewarded (ETH)", "honest stake", "malicious stake",
                  "pool (ETH)"), out)


def stakes_table(rows: Sequence[Row], malicious: set[int]) -> list[str]:
    """Every peer's stake after the last round that recorded them (``extra.ledger.stakes``)."""
    recorded = [s for s in (get_stakes(r) for r in rows) if s]
    if not recorded:
        return []
    first, last = recorded[0], recorded[-1]
    cells = [(f"{p}{'*' if p in malicious else ''}", first.get(p), v)
             for p, v in sorted(last.items())]
    return ["<h2 id='stakes'>Stake per peer (ETH)</h2>",
            table(("peer", "after the first round", "after the last round"), cells)]


def seats_text(values: Any, committee: Any, malicious: set[int]) -> str:
    """Committee seats, as ``seat→peer`` when the ledger recorded who sat there."""
    if not isinstance(values, list | tuple) or not values:
        return "—"
    if not isinstance(committee, list):
        return ids_text(values)
    return " ".join(f"{j}→{committee[j]}{'*' if committee[j] in malicious else ''}"
                    if isinstance(j, int) and 0 <= j < len(committee) else str(j)
                    for j in values)


def is_secure_row(row: Row) -> bool:
    """A round aggregated under MPC (it reports the committee's findings)."""
    return get_path(row, "extra", "cheating_servers") is not None


def committee_table(rows: Sequence[Row], malicious: set[int]) -> str:
    """Per round: the injected faults, the servers named (and how) or silent, the abort
    reason, rejected clients with the check that caught them, refused uploads."""
    out = []
    for r in rows:
        if not is_secure_row(r):
            continue
        adv = get_adversaries(r)
        evidence = get_path(r, "extra", "server_evidence")
        how = "; ".join(f"{j}: {why}" for j, why in evidence.items()) \
            if isinstance(evidence, Mapping) else ""
        rejected = ", ".join(f"{j.get('peer')}{'*' if j.get('peer') in malicious else ''}: "
                             f"{j.get('reason')}" for j in r.get("rejected") or [])
        refused = ", ".join(f"{v.get('client')}: {v.get('reason')}"
                            for v in get_path(r, "extra", "protocol_violations") or []
                            if isinstance(v, Mapping))
        attack = adv.get("server_attack")
        seats = get_path(r, "extra", "ledger", "committee")
        out.append((r.get("round"),
                    f"{attack}: {seats_text(adv.get('corrupt_servers'), seats, malicious)}"
                    if attack else "—",
                    seats_text(get_servers(r), seats, malicious), how or "—",
                    seats_text(get_path(r, "extra", "dropped_servers"), seats, malicious),
                    get_path(r, "extra", "aborted") or "—",
                    f"{adv['client_fault']}: {ids_text(adv.get('faulty_clients'))}"
                    if adv.get("client_fault") else "—", rejected or "—", refused or "—"))
    return table(("round", "corrupt servers (seat→peer)", "identified", "evidence", "silent",
                  "abort",
                  "faulty clients", "rejected (reason)", "refused uploads"), out)


def write_run_report(run_dir: Path) -> Path:
    """``run_dir/report.html``: configuration, summary and the :data:`RUN_PLOTS`."""
    path = run_dir / "report.html"
    path.write_text(render_run_report(run_dir))
    return path


# ---------------------------------------------------------------------------------------------
# the grid report of ``phalanx experiment``


def read_accuracy_curve(run_dir: Path) -> list[float]:
    """Accuracy per round of one run (NaN for null)."""
    _, rows, _ = load_run(run_dir)
    return [number(r.get("accuracy")) for r in rows]


def draw_curves(out_dir: Path, rules: Sequence[str], attack: str,
                seeds: Sequence[int]) -> Callable[[Any], None]:
    """One attack's per-round accuracy, every rule side by side (mean ± std band over seeds)."""
    import numpy as np

    def draw(ax: Any) -> None:
        for rule in rules:
            base = out_dir / f"{rule}__{attack}"
            dirs = [base] if len(seeds) == 1 else [base / f"s{s}" for s in seeds]
            curves = [read_accuracy_curve(d) for d in dirs if d.is_dir()]
            if not curves or not min(len(c) for c in curves):
                continue
            n = min(len(c) for c in curves)
            values = np.array([c[:n] for c in curves])
            mean = values.mean(axis=0)
            rounds = np.arange(1, n + 1)
            (line,) = ax.plot(rounds, mean, marker="o", ms=2, label=rule)
            if len(curves) > 1:
                std = values.std(axis=0, ddof=1)
                ax.fill_between(rounds, mean - std, mean + std, color=line.get_color(),
                                alpha=0.2)
        ax.set(xlabel="round", ylabel="test accuracy", ylim=(0, 1), title=f"attack: {attack}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return draw


def write_grid_report(out_dir: Path, cells: Sequence[Any], rules: Sequence[str],
                      attacks: Sequence[str], seeds: Sequence[int], *, title: str) -> Path:
    """``out_dir/report.html``: the table (mean ± std), the heatmap, per-round curves per
    attack with the rules side by side."""
    from phalanx.sim.experiment import markdown_table

    heatmap = base64.b64encode((out_dir / "results.png").read_bytes()).decode("ascii")
    body = [f"<p>{html.escape(title)}</p>", "<h2 id='summary'>Final accuracy</h2>",
            "<pre>" + html.escape(markdown_table(cells, rules, attacks)) + "</pre>",
            img("heatmap", "Final accuracy, rules × attacks", heatmap)]
    body += [img(f"curves-{attack}", f"Accuracy per round under {attack}"
                 + (f" (mean ± std over seeds {list(seeds)})" if len(seeds) > 1 else ""),
                 figure_png(draw_curves(out_dir, rules, attack, seeds)))
             for attack in attacks]
    path = out_dir / "report.html"
    path.write_text(html_page("Phalanx experiment", body))
    return path
