"""The ``phalanx`` command line (typer). Each sub-module registers its commands and stays thin:
it parses options, builds parameters and calls into the library; heavy imports happen inside
the commands so that ``phalanx --help`` starts fast. Expected failures print one ``error:``
line and exit 2 (``phalanx --debug ...`` keeps the traceback; cli/errors.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from phalanx.cli import chain, committee, mpc, network, peer, sim

app = typer.Typer(
    name="phalanx",
    help="Serverless collaborative learning: robust rules under secure MPC, with a ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def get_version() -> str:
    """The installed package's version (the source tree's when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("phalanx")
    except PackageNotFoundError:
        return "0.1.0+source"


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"phalanx {get_version()}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error "
                                        "instead of one line.")] = False,
) -> None:
    """Serverless collaborative learning: robust rules under secure MPC, with a ledger."""
    ctx.obj = {"debug": debug}


sim.register(app)
mpc.register(app)
chain.register(app)
committee.register(app)
peer.register(app)
network.register(app)


def main() -> None:
    """Entry point of the ``phalanx`` script."""
    app()
