"""The `spinal-edge` command line: run the daemon, check a config file, show the API token."""

from __future__ import annotations

from pathlib import Path

import typer

from spinal_edge import __version__
from spinal_edge.settings import DEFAULT_CONFIG_PATH

app = typer.Typer(
    name="spinal-edge", help="The spinal robot control daemon.", no_args_is_help=True, add_completion=False
)
config_app = typer.Typer(help="Work with the daemon's config file.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@app.callback()
def _root() -> None:
    """Keep sub-commands as sub-commands even while there is only one."""


@app.command()
def version() -> None:
    """Print the daemon version."""
    typer.echo(__version__)


@app.command()
def run(
    config: Path = typer.Option(DEFAULT_CONFIG_PATH, "--config", "-c", help="the daemon's TOML config file"),
) -> None:
    """Run the daemon (as the systemd service does) until SIGTERM or Ctrl-C."""
    from spinal_edge.runner import run as run_daemon

    raise typer.Exit(run_daemon(config))


@config_app.command("check")
def config_check(file: Path = typer.Argument(..., help="the TOML config file to validate")) -> None:
    """Validate a config file; prints what is wrong and how to fix it, or a one-line summary."""
    from spinal_edge.config_file import load_config_file
    from spinal_edge.errors import ConfigError

    try:
        config, _raw = load_config_file(file)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    cameras = ", ".join(f"{n} ({c.kind})" for n, c in config.cameras.items()) or "none"
    typer.echo(
        f"{file}: OK — HTTP port {config.http.port}, loop {config.loop.rate_hz:g} Hz, MCU {config.robot.mcu_port}, "
        f"cameras: {cameras}, inference: {config.engine_kind()}{' (auto)' if config.inference.engine == 'auto' else ''}, data in {config.data_dir}"
    )


@app.command()
def token(
    config: Path = typer.Option(DEFAULT_CONFIG_PATH, "--config", "-c", help="the daemon's TOML config file"),
) -> None:
    """Print the device API token (creating it on first use)."""
    from spinal_edge.api.auth import load_or_create_token
    from spinal_edge.config_file import load_config_file
    from spinal_edge.errors import ConfigError

    try:
        cfg, _raw = load_config_file(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(load_or_create_token(cfg.token_path()))


def main() -> None:
    app()
