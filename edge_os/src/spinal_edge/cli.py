"""The `spinal-edge` command line."""

from __future__ import annotations

import typer

from spinal_edge import __version__

app = typer.Typer(
    name="spinal-edge", help="The spinal robot control daemon.", no_args_is_help=True, add_completion=False
)


@app.callback()
def _root() -> None:
    """Keep sub-commands as sub-commands even while there is only one."""


@app.command()
def version() -> None:
    """Print the daemon version."""
    typer.echo(__version__)


def main() -> None:
    app()
