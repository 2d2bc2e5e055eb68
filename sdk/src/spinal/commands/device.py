"""`spinal device ...`: a spinal device's status, its recorded episodes, and pulling them to this machine.

Registered into the `spinal` CLI by discovery; the token comes from `--token` or `SPINAL_TOKEN`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.syntax import Syntax
from rich.table import Column, Table

from spinal.commands._cli import ExitCode, emit_json, err, fail, human_bytes, out

if TYPE_CHECKING:
    from spinal.device import EpisodeSummary

app = typer.Typer(
    name="device",
    help="A spinal device over its HTTP API: status, recorded episodes, pull them for conversion.",
    no_args_is_help=True,
)

UrlArgument = Annotated[str, typer.Argument(help="Device address, e.g. http://192.168.1.20:8080.")]
TokenOption = Annotated[
    str | None, typer.Option(envvar="SPINAL_TOKEN", help="API token the device page shows (or SPINAL_TOKEN).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="device")


def _client(url: str, token: str | None):
    from spinal.device import DeviceClient, DeviceError

    try:
        return DeviceClient(url, token=token)
    except DeviceError as exc:
        fail(str(exc), ExitCode.USAGE)


def _fail_device(exc: Exception) -> None:
    from spinal.device import DeviceAuthError

    fail(str(exc), ExitCode.AUTH if isinstance(exc, DeviceAuthError) else ExitCode.UNREACHABLE)


def _ask(url: str, token: str | None, call):
    """Run one request against the device, turning its errors into exit codes."""
    from spinal.device import DeviceError

    with _client(url, token) as client:
        try:
            return call(client)
        except DeviceError as exc:
            _fail_device(exc)


@app.command()
def status(url: UrlArgument, token: TokenOption = None, json_output: JsonOption = False) -> None:
    """Print the device's `GET /api/status` (mode, inference, loop, cameras, MCU)."""
    payload = _ask(url, token, lambda client: client.status())
    if json_output:
        emit_json(payload)
    else:
        out.print(Syntax(json.dumps(payload, indent=2), "json", word_wrap=True))


@app.command()
def episodes(url: UrlArgument, token: TokenOption = None, json_output: JsonOption = False) -> None:
    """List the episodes recorded on the device."""
    listed = _ask(url, token, lambda client: client.list_episodes())
    if json_output:
        emit_json({"episodes": [e.model_dump() for e in listed]})
        return
    out.print(episodes_table(listed))
    out.print(f"{len(listed)} episode(s), {sum(e.offered for e in listed)} ready to pull")


def episodes_table(listed: list[EpisodeSummary]) -> Table:
    """The episode list for people. The id is what `pull --episode` takes, so it is never cut or wrapped,
    however narrow the terminal (or a pipe's 80 columns); the other columns give way instead."""
    table = Table(Column("id", no_wrap=True), "status", "task", "frames", "duration", "size", "pull")
    for e in listed:
        table.add_row(
            e.id,
            e.status,
            e.task or "",
            str(e.frames),
            f"{e.duration_s:.1f} s",
            human_bytes(e.size_bytes),
            "yes" if e.offered else "no",
        )
    return table


@app.command()
def pull(
    url: UrlArgument,
    dest: Annotated[Path, typer.Argument(help="Local recordings folder (one sub-folder per episode).")],
    token: TokenOption = None,
    episode: Annotated[
        list[str] | None, typer.Option("--episode", "-e", help="Only this episode id (repeatable).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=32, help="Files downloaded in parallel.")] = 4,
    json_output: JsonOption = False,
) -> None:
    """Download finished episodes (resumable, sha256-verified; already pulled ones are skipped). Exit 3 if some failed."""
    from spinal.device import DeviceError, pull_episodes

    progress = Progress(
        TextColumn("[bold]pulling"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        disable=json_output,
        transient=True,
    )
    with _client(url, token) as client, progress:
        task = progress.add_task("pull", total=None)

        def on_progress(kind: str, value: object) -> None:
            if kind == "total_bytes":
                progress.update(task, total=value)
            elif kind == "bytes":
                progress.advance(task, value)

        try:
            report = pull_episodes(client, dest, workers=workers, only=episode, progress=on_progress)
        except DeviceError as exc:
            _fail_device(exc)
    if json_output:
        emit_json(report.to_dict())
    else:
        for episode_id in report.pulled:
            out.print(f"[green]✓[/] {episode_id}")
        for episode_id, reason in report.failed.items():
            err.print(f"[red]failed[/] {episode_id}: {reason}")
        out.print(
            f"pulled {len(report.pulled)}, already here {len(report.skipped)}, not ready {len(report.not_offered)}, "
            f"failed {len(report.failed)}; {human_bytes(report.bytes_fetched)} downloaded into {report.dest}"
        )
    raise typer.Exit(int(ExitCode.PARTIAL if report.failed else ExitCode.OK))
