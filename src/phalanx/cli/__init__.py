"""The ``phalanx`` command line (typer). Each sub-module registers its commands and stays thin:
it parses options, builds parameters and calls into the library; heavy imports happen inside
the commands so that ``phalanx --help`` starts fast."""

from __future__ import annotations

import typer

from phalanx.cli import chain, committee, mpc, sim

app = typer.Typer(
    name="phalanx",
    help="Serverless collaborative learning: robust rules under secure MPC, with a ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sim.register(app)
mpc.register(app)
chain.register(app)
committee.register(app)


def main() -> None:
    """Entry point of the ``phalanx`` script."""
    app()
