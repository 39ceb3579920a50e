"""``phalanx committee``: how large must a random committee be (protocol.md §2, §3.5)?

Thin: parses options, calls :mod:`phalanx.mpc.committee_size`, prints a table or JSON lines.
Semantics and worked examples: docs/mpc-committee.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from phalanx.cli.errors import one_line_errors

if TYPE_CHECKING:
    from fractions import Fraction

    from phalanx.mpc.committee_size import Model, SizingPoint, SizingTable


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("committee")(committee)


@one_line_errors
def committee(
    corrupt: Annotated[
        str, typer.Option(help="Corrupt (stake) fraction f in [0, 1): a decimal or a ratio: 1/10.")
    ] = "0.1",
    failure: Annotated[
        str, typer.Option(help="Target in (0, 1): P(more than t corrupt members) must be below it.")
    ] = "1e-6",
    peers: Annotated[
        int | None,
        typer.Option(help="Population N: adds the hypergeometric model with floor(f*N) corrupt."),
    ] = None,
    max_t: Annotated[int, typer.Option(help="Show thresholds t = 1..max-t.")] = 10,
    search_limit: Annotated[
        int, typer.Option(help="Search the smallest safe committee up to this t.")
    ] = 1000,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON lines instead.")] = False,
    clients: Annotated[
        int, typer.Option(help="Updates per round n, for the predicted cost.")
    ] = 100,
    dim: Annotated[int, typer.Option(help="Model dimension d, for the predicted cost.")] = 100_000,
) -> None:
    """Committee sizing: P(more than t of m members corrupt) at m = 3t+1 and m = 4t+1.

    Lists t = 1..max-t with both tails and whether each is below the target, then the smallest
    safe committee of each kind (docs/mpc-committee.md)."""
    from phalanx.errors import ConfigError
    from phalanx.mpc import committee_size as cs

    try:
        tables = _compute_tables(corrupt, failure, peers, max_t, search_limit)
        _cost(1, 4, clients, dim)  # validates clients and dim
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    for table in tables:
        if json_out:
            _print_json(table, cs.to_fraction(corrupt, "corrupt"), clients, dim)
        else:
            _print_table(table, search_limit, clients, dim)


def _cost(t: int, m: int, clients: int, dim: int) -> Any:
    from phalanx.chain.model import MAX_COMMITTEE
    from phalanx.mpc.committee_cost import predict_cost

    return predict_cost(m, t, clients=clients, dim=dim, max_committee=MAX_COMMITTEE)


def _cost_line(point: SizingPoint, clients: int, dim: int) -> str:
    """The predicted cost beside a recommended committee, or why it is not recommended."""
    from phalanx.chain.model import MAX_COMMITTEE

    c = _cost(point.t, point.m, clients, dim)
    if not c.contract_ok:
        return (f"    not recommended: m={point.m} > the contract's MAX_COMMITTEE="
                f"{MAX_COMMITTEE}")
    peer = ("" if c.per_peer_ok
            else " (in-process engine only: the per-peer path would deal C(m, t) PRZS keys)")
    return (f"    predicted at n={clients}, d={dim}: per-server CPU {c.server_s:.2f} s, "
            f"per-client CPU {c.client_s:.3f} s, upload {c.upload_bytes / 4 / dim:.1f}x "
            f"float32, re-randomization {c.zero}{peer}")


def _compute_tables(
    corrupt: str, failure: str, peers: int | None, max_t: int, search_limit: int
) -> list[SizingTable]:
    from phalanx.errors import ConfigError
    from phalanx.mpc import committee_size as cs

    f = cs.to_fraction(corrupt, "corrupt")
    target = cs.to_fraction(failure, "failure")
    cs.require_fraction_in(f, "corrupt", low_open=False, high_open=True)
    cs.require_fraction_in(target, "failure", low_open=True, high_open=True)
    models: list[Model] = [cs.Binomial(f)]
    if peers is not None:
        smallest = cs.compute_committee_size(1, cs.Kind.DETECT)
        if peers < smallest:
            raise ConfigError(f"peers N={peers} must be >= m={smallest} (the committee t=1)")
        models.append(cs.Hypergeometric(peers, cs.compute_corrupt_peers(peers, f)))
    return [
        cs.compute_sizing_table(model, failure=target, max_t=max_t, search_limit=search_limit)
        for model in models
    ]


def format_probability(value: Fraction) -> str:
    """Scientific notation that survives values below the float range (e.g. 3.2e-412)."""
    from phalanx.mpc.committee_size import compute_log10

    if value == 0:
        return "0"
    exp10 = compute_log10(value)
    exponent = int(exp10 // 1)
    mantissa = 10 ** (exp10 - exponent)
    if mantissa >= 9.995:  # rounding would print 10.00e-7
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.2f}e{exponent:+03d}" if exponent < -4 else f"{float(value):.6f}"


def _describe(model: Model) -> str:
    from phalanx.mpc.committee_size import Binomial

    if isinstance(model, Binomial):
        return f"binomial, f={model.corrupt} (infinite population)"
    return (
        f"hypergeometric, N={model.peers} peers, K=floor(f*N)={model.corrupt_peers} corrupt"
        " (drawn without replacement)"
    )


def _cell(point: SizingPoint | None) -> tuple[str, str, str]:
    if point is None:
        return ("-", "m > N", " ")
    return (str(point.m), format_probability(point.tail), "✓" if point.safe else "✗")


def _print_table(table: SizingTable, search_limit: int, clients: int, dim: int) -> None:
    typer.echo(f"Model: {_describe(table.model)}; target P[> t corrupt] < {table.failure}")
    header = f"{'t':>4} | {'m=3t+1':>6} {'P[>t]':>10}   | {'m=4t+1':>6} {'P[>t]':>10}  "
    typer.echo(header)
    typer.echo("-" * len(header))
    for row in table.rows:
        m3, p3, ok3 = _cell(row.detect)
        m4, p4, ok4 = _cell(row.identify)
        typer.echo(f"{row.t:>4} | {m3:>6} {p3:>10} {ok3} | {m4:>6} {p4:>10} {ok4}")
    for label, point in (
        ("m >= 3t+1 (abort on cheating)", table.smallest_detect),
        ("m >= 4t+1 (cheaters identified)", table.smallest_identify),
    ):
        if point is None:
            typer.echo(f"smallest safe {label}: none with t <= {search_limit} (or m <= N)")
        else:
            typer.echo(
                f"smallest safe {label}: t={point.t}, m={point.m}, "
                f"P[>t]={format_probability(point.tail)}"
            )
            typer.echo(_cost_line(point, clients, dim))
    typer.echo("")


def _point_json(point: SizingPoint | None) -> dict[str, Any] | None:
    from phalanx.mpc.committee_size import compute_log10

    if point is None:
        return None
    return {
        "t": point.t,
        "m": point.m,
        "tail": float(point.tail),
        "log10_tail": compute_log10(point.tail) if point.tail > 0 else None,
        "safe": point.safe,
    }


def _cost_json(point: SizingPoint | None, clients: int, dim: int) -> dict[str, Any] | None:
    if point is None:
        return None
    c = _cost(point.t, point.m, clients, dim)
    return {"server_s": c.server_s, "client_s": c.client_s, "upload_bytes": c.upload_bytes,
            "zero": c.zero, "recommended": c.runnable, "per_peer_ok": c.per_peer_ok,
            "contract_ok": c.contract_ok}


def _print_json(table: SizingTable, corrupt: Fraction, clients: int, dim: int) -> None:
    import json

    from phalanx.mpc.committee_size import Binomial

    model = table.model
    record: dict[str, Any] = {
        "model": "binomial" if isinstance(model, Binomial) else "hypergeometric",
        "corrupt": float(corrupt),
        "failure": float(table.failure),
        "rows": [
            {"t": r.t, "detect": _point_json(r.detect), "identify": _point_json(r.identify)}
            for r in table.rows
        ],
        "smallest_detect": _point_json(table.smallest_detect),
        "smallest_identify": _point_json(table.smallest_identify),
        "cost_detect": _cost_json(table.smallest_detect, clients, dim),
        "cost_identify": _cost_json(table.smallest_identify, clients, dim),
    }
    if not isinstance(model, Binomial):
        record["peers"] = model.peers
        record["corrupt_peers"] = model.corrupt_peers
    typer.echo(json.dumps(record))
