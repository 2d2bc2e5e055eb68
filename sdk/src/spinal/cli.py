"""The `spinal` command line: one typer app; each command group lives in its own module."""

from __future__ import annotations

import typer

from spinal import __version__

app = typer.Typer(
    name="spinal",
    help="spinal: robot-arm recordings, datasets and devices from your workstation.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def version() -> None:
    """Print the SDK version."""
    typer.echo(__version__)


def main() -> None:
    app()
