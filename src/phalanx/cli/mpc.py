"""CLI commands of phalanx.mpc: ``phalanx bench mpc`` (one secure aggregation vs plaintext).

Bad options are one ``error:`` line naming the option and value, exit code 2 (cli/errors.py):
checked here (counts, seed, modes, memory) or by ``SecureParams`` and the rule registry.
"""

from __future__ import annotations

import typer

from phalanx.cli.errors import one_line_errors


def register(app: typer.Typer) -> None:
    """Add this module's commands to app (a ``bench`` group with ``mpc``)."""
    bench = typer.Typer(help="Benchmarks.", no_args_is_help=True)
    bench.command("mpc")(bench_mpc)
    app.add_typer(bench, name="bench")


#: float32 copies of the n x d updates the benchmark holds at once (inputs, prepared, plaintext)
UPDATE_COPIES = 3


def check_counts(*, clients: int, dim: int, workers: int, seed: int) -> None:
    """Counts >= 1, seed >= 0, and the updates fit in this machine's memory."""
    import os

    from phalanx.errors import ConfigError

    for name, value in (("clients", clients), ("dim", dim), ("workers", workers)):
        if value < 1:
            raise ConfigError(f"{name}={value} must be >= 1")
    if seed < 0:
        raise ConfigError(f"seed={seed} must be >= 0")
    need = UPDATE_COPIES * 4 * clients * dim
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # not on this platform: let the run find out
        return
    if need > ram:
        raise ConfigError(f"clients={clients} x dim={dim} needs about {need / 2**30:.0f} GiB "
                          f"of updates, more than this machine's {ram / 2**30:.0f} GiB")


@one_line_errors
def bench_mpc(
    rule: str = typer.Option("fltrust", help="fedavg-nb, cc, rsa or fltrust"),
    clients: int = typer.Option(50, help="number of clients n (>= 1)"),
    dim: int = typer.Option(100_000, help="update dimension d (>= 1)"),
    committee: int = typer.Option(5, help="committee size m"),
    threshold: int = typer.Option(1, help="privacy threshold t (m >= 3t+1)"),
    frac_bits: int = typer.Option(16, help="fixed-point fractional bits f"),
    seed: int = typer.Option(0, help="seed of the updates and of the protocol's randomness"),
    sharing: str = typer.Option("seeded", help="seeded (t seeds + m-t share vectors) or masked"),
    workers: int = typer.Option(1, help="threads (>= 1) running the simulated parties side by "
                                "side (per-party times stay CPU seconds of one thread)"),
    spool: str = typer.Option("auto", help="where servers keep uploads until the coin: "
                              "auto (files above 1 GiB), memory or files"),
    json_out: bool = typer.Option(False, "--json", help="last line: one JSON object"),
) -> None:
    """Run one secure aggregation of random updates and the plaintext rule on the same updates."""
    import json

    from phalanx.errors import ConfigError
    from phalanx.net.envelope import x25519_envelope
    from phalanx.rules.secure.bench import run_bench

    check_counts(clients=clients, dim=dim, workers=workers, seed=seed)
    modes = {"auto": None, "memory": False, "files": True}
    if spool not in modes:
        raise ConfigError(f"spool={spool!r} must be one of {sorted(modes)}")
    if sharing not in ("seeded", "masked"):
        raise ConfigError(f"sharing={sharing!r} must be 'seeded' or 'masked'")
    out = run_bench(rule, clients=clients, dim=dim, committee=committee, threshold=threshold,
                    frac_bits=frac_bits, seed=seed, envelope=x25519_envelope, sharing=sharing,
                    workers=workers, spool=modes[spool])
    if json_out:
        typer.echo(json.dumps(out, sort_keys=True))
        return
    typer.echo(f"rule={rule} n={clients} d={dim} m={committee} t={threshold} sharing={sharing}")
    typer.echo(f"plaintext {out['plaintext_s']:.3f} s; per server max {out['server_s_max']:.3f} s "
               f"({out['server_over_plaintext']:.2f}x); total {out['total_s']:.2f} s")
    cs = out["client_s"]
    typer.echo("client per-client s: " + ", ".join(f"{k} {v:.4f}" for k, v in cs.items()))
    typer.echo(f"upload/client {out['upload_bytes_per_client'] / 1e6:.2f} MB "
               f"({out['upload_over_float32']:.2f}x float32); peak RSS {out['peak_rss_mb']:.0f} "
               f"MiB (secure part {out['peak_rss_secure_mb']:.0f}); max |err| "
               f"{out['max_abs_error']:.3g} (bound {out['error_bound']:.3g})")
