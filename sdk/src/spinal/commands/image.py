"""`spinal image configure` (preseed an SD-card image or card) and `spinal image flash` (write and verify it).

Secrets given here (Wi-Fi passphrase, TLS key) go onto the boot partition only; nothing prints or logs them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from spinal.image.bootfs import BootPartition
from spinal.image.errors import ImageError, PreseedError
from spinal.image.preseed import PRESEED_FILENAME, Preseed, TlsFiles, WifiNetwork, parse_wifi_argument

image_app = typer.Typer(help="Prepare and write the spinal Raspberry Pi SD-card image.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(image_app, name="image")


def _fail(exc: ImageError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=2)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise PreseedError(f"cannot read the {what} file {path}: {exc}; check the path") from None


def _wifi_networks(values: list[str]) -> tuple[WifiNetwork, ...]:
    networks = []
    for value in values:
        ssid, psk = parse_wifi_argument(value)
        if psk is None:
            if not sys.stdin.isatty():
                raise PreseedError(
                    f"no passphrase for Wi-Fi {ssid!r}: give --wifi 'SSID:PASSPHRASE' or run interactively"
                )
            psk = typer.prompt(
                f"Passphrase for Wi-Fi {ssid!r} (empty for an open network)",
                default="",
                hide_input=True,
                show_default=False,
            )
        networks.append(WifiNetwork(ssid=ssid, psk=psk))
    return tuple(networks)


@image_app.command()
def configure(
    image: Path = typer.Argument(
        ..., help="the .img file, or the card's device after flashing (e.g. /dev/sdb)"
    ),
    wifi: list[str] = typer.Option(
        [], help="SSID:PASSPHRASE (repeatable; '\\:' for a colon in the SSID; SSID alone prompts)"
    ),
    wifi_country: str | None = typer.Option(None, help="two-letter Wi-Fi regulatory country, e.g. DE"),
    server: list[str] = typer.Option(
        [], help="inference server endpoint, e.g. tls/gpu.example.org:7447 (repeatable)"
    ),
    hostname: str | None = typer.Option(None, help="the device's hostname (default spinal-XXXX)"),
    ca: Path | None = typer.Option(None, help="PEM file of the CA that signed the server's certificate"),
    cert: Path | None = typer.Option(None, help="PEM file of this device's client certificate"),
    key: Path | None = typer.Option(None, help="PEM file of this device's private key"),
    ssh_key: list[Path] = typer.Option(
        [], help="SSH public key file (.pub) for root login; enables SSH (repeatable)"
    ),
    reset: bool = typer.Option(False, help="discard settings written to this image before"),
) -> None:
    """Write settings onto the image's boot partition; the device applies them on its next boot, then erases them."""
    try:
        tls = None
        if ca or cert or key:
            tls = TlsFiles(
                ca=_read_text(ca, "CA") if ca else None,
                cert=_read_text(cert, "certificate") if cert else None,
                key=_read_text(key, "key") if key else None,
            )
        keys = tuple(
            line.strip()
            for path in ssh_key
            for line in _read_text(path, "SSH key").splitlines()
            if line.strip() and not line.startswith("#")
        )
        update = Preseed(
            hostname=hostname,
            wifi=_wifi_networks(wifi),
            wifi_country=wifi_country.upper() if wifi_country else None,
            servers=tuple(server),
            tls=tls,
            ssh_authorized_keys=keys,
        )
        boot = BootPartition(image)
        existing = boot.read(PRESEED_FILENAME)
        if existing is not None and not reset:
            try:
                update = Preseed.from_json(existing).merged_with(update)
            except PreseedError as exc:
                raise PreseedError(
                    f"the image already holds a preseed that is not valid ({exc}); add --reset"
                ) from None
        if update.is_empty():
            boot.delete(PRESEED_FILENAME)
            typer.echo(f"{image}: no settings to preseed; the device will start with its defaults")
            return
        boot.write(PRESEED_FILENAME, update.to_json())
    except ImageError as exc:
        raise _fail(exc) from None
    typer.echo(f"{image}: preseeded (applied and erased by the device on its next boot)")
    for line in update.summary():
        typer.echo(f"  {line}")


@image_app.command()
def flash(
    image: Path = typer.Argument(..., exists=True, dir_okay=False, help="spinal-*.img or spinal-*.img.xz"),
    target: Path = typer.Argument(..., help="the SD card's whole device, e.g. /dev/sdb or /dev/mmcblk0"),
    keep_data: bool = typer.Option(
        False, help="update: write boot and root only, keep the card's data partition"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask before overwriting"),
    verify: bool = typer.Option(True, help="read the card back and compare"),
) -> None:
    """Write the image to an SD card and verify it; refuses mounted disks and the computer's own disk."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from spinal.image.flash import check_checksum_file
    from spinal.image.flash import flash as write_image
    from spinal.image.target import inspect_target

    try:
        checked = inspect_target(target)
        if check_checksum_file(image) is False:
            raise ImageError(f"{image} does not match {image.name}.sha256; download the image again")
        what = "replace the system on" if keep_data else "erase everything on"
        if not yes:
            if not sys.stdin.isatty():
                raise ImageError(f"this would {what} {checked.description}; add --yes to confirm")
            typer.confirm(f"This will {what} {checked.description}. Continue?", abort=True)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()
        ) as bar:
            tasks: dict[str, int] = {}

            def show(phase: str, done: int, total: int | None) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done, total=total)

            result = write_image(image, checked, keep_data=keep_data, verify=verify, progress=show)
    except ImageError as exc:
        raise _fail(exc) from None
    state = "written and verified" if result.verified else "written (not verified)"
    typer.echo(f"{checked.description}: {result.bytes_written / 1e6:.0f} MB {state}")
