"""The `spinal` command line: one typer app; each command group lives in `spinal.commands.<name>`.

A module in `spinal/commands/` exposes `register(app)`, which adds its commands or sub-app; importing
is lazy per module so one group's optional dependency never breaks the others.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from spinal import __version__, commands

app = typer.Typer(
    name="spinal",
    help="spinal: robot-arm recordings, datasets and devices from your workstation.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Keep sub-commands as sub-commands even while there is only one."""


@app.command()
def version() -> None:
    """Print the SDK version."""
    typer.echo(__version__)


def _register_command_groups() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)


_register_command_groups()


def main() -> None:
    app()
