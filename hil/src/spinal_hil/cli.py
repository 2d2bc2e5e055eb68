"""The `spinal-hil` command line."""

from __future__ import annotations

import typer

from spinal_hil import __version__

app = typer.Typer(
    name="spinal-hil", help="The spinal hardware-in-the-loop rig.", no_args_is_help=True, add_completion=False
)


@app.callback()
def _root() -> None:
    """Keep sub-commands as sub-commands even while there is only one."""


@app.command()
def version() -> None:
    """Print the rig version."""
    typer.echo(__version__)


def main() -> None:
    app()
