"""`spinal record`: record a LeRobotDataset from a spinal device — episodes, reset periods, keys, faults.

Registered into the `spinal` CLI by discovery; the session logic lives in `spinal.record`.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from spinal.commands._cli import ExitCode, emit_json, err, fail, out
from spinal.record.options import RecordMode

INTERRUPTED_EXIT = 130  # the shell's convention for "ended by SIGINT"


def register(root: typer.Typer) -> None:
    root.command("record")(record)


def record(
    device: Annotated[str, typer.Option("--device", help="Device address, e.g. http://192.168.1.20:8080.")],
    task: Annotated[str, typer.Option(help="The task every episode shows, e.g. 'pick up the red cube'.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the LeRobotDataset v3 (new, or --resume).")
    ],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Dataset name, e.g. me/so101_pick.")],
    episodes: Annotated[
        int, typer.Option(min=1, help="Episodes the session records (kept ones count).")
    ] = 10,
    episode_time: Annotated[float, typer.Option(min=0.1, help="Seconds per episode.")] = 30.0,
    reset_time: Annotated[
        float, typer.Option(min=0.0, help="Seconds to reset the scene between episodes.")
    ] = 10.0,
    mode: Annotated[RecordMode, typer.Option(help="Who drives the arm: teleop (leader arm) or policy.")] = (
        RecordMode.TELEOP
    ),
    resume: Annotated[
        bool,
        typer.Option(help="Continue the session recorded into --out; numbering goes on after its episodes."),
    ] = False,
    pull_every: Annotated[
        int,
        typer.Option(min=0, help="Pull and convert every K kept episodes while recording (0: at the end)."),
    ] = 0,
    token: Annotated[
        str | None,
        typer.Option(envvar="SPINAL_TOKEN", help="API token the device page shows (or SPINAL_TOKEN)."),
    ] = None,
    recordings: Annotated[
        Path | None,
        typer.Option(help="Where pulled episodes and the session journal go (default: <out>.recordings)."),
    ] = None,
    plain: Annotated[
        bool, typer.Option("--plain", help="Progress lines instead of the live view, even on a terminal.")
    ] = False,
    reconnect_timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait for a device that went away before giving up.")
    ] = 300.0,
    json_output: Annotated[
        bool, typer.Option("--json", help="End with one JSON document (implies --plain).")
    ] = False,
) -> None:
    """Record episodes on a device (arm, record, count down, reset, next), then pull and convert them.

    Keys on a terminal: → ends the episode early, ← discards it and records it again, Esc stops the session
    (you choose whether the current episode is kept). Ctrl-C stops at once: the device is left idle and
    holding, every finished episode stays safe on it, and --resume continues later. Without a terminal,
    progress lines go to stdout.
    """
    from spinal.device import DeviceAuthError, DeviceClient, DeviceError
    from spinal.record import (
        DeviceControl,
        LiveView,
        NoKeys,
        PlainView,
        RecordError,
        RecordSession,
        SessionAborted,
        SessionDataset,
        SessionOptions,
        SessionSetupError,
        TerminalKeys,
    )

    try:
        options = SessionOptions(
            device_url=device,
            task=task,
            episodes=episodes,
            episode_time_s=episode_time,
            reset_time_s=reset_time,
            mode=mode,
            out_dir=out_dir,
            repo_id=repo_id,
            token=token,
            resume=resume,
            pull_every=pull_every,
            recordings_dir=recordings,
            reconnect_timeout_s=reconnect_timeout,
        )
        client = DeviceClient(device, token=token)
    except (RecordError, DeviceError) as exc:
        fail(escape(str(exc)), ExitCode.USAGE)
    interactive = not (plain or json_output) and sys.stdin.isatty() and sys.stdout.isatty()
    view = LiveView(Console()) if interactive else PlainView(sys.stderr if json_output else sys.stdout)
    keys = TerminalKeys(sys.stdin.fileno()) if interactive else NoKeys()
    dataset = SessionDataset(client, options.raw_dir, options.out_dir, repo_id=options.repo_id)
    session = RecordSession(options, DeviceControl(client), keys=keys, view=view, dataset=dataset)
    try:
        session.prepare()
    except SessionSetupError as exc:
        client.close()
        fail(escape(str(exc)), ExitCode.USAGE)
    try:
        with _interrupts_as_keyboard(), keys if isinstance(keys, TerminalKeys) else contextlib.nullcontext():
            try:
                result = session.run()
            finally:
                view.close()
    except SessionAborted as aborted:
        _report_abort(aborted.report, options)
        raise typer.Exit(INTERRUPTED_EXIT) from None
    except DeviceAuthError as exc:
        fail(escape(str(exc)), ExitCode.AUTH)
    except DeviceError as exc:
        fail(escape(str(exc)), ExitCode.UNREACHABLE)
    except RecordError as exc:
        fail(escape(str(exc)))
    finally:
        client.close()
    raise typer.Exit(int(_finish(result, options, json_output)))


def _finish(result, options, json_output: bool) -> ExitCode:
    from spinal.record import EndedBy
    from spinal.record.summary import dataset_totals, render_summary, summary_json

    sync = result.sync
    totals = dataset_totals(options.out_dir) if sync is not None and not sync.convert_error else None
    if json_output:
        emit_json(summary_json(result, totals))
    else:
        out.print(render_summary(result, options.out_dir, totals))
        if sync is not None:
            for episode_id, reason in sync.missing.items():
                err.print(f"[yellow]not pulled[/] {episode_id}: {escape(reason)}")
            if sync.convert_error:
                err.print(f"[red]the dataset was not written:[/] {escape(sync.convert_error)}")
        for note in result.notes:
            err.print(f"[yellow]note:[/] {escape(note)}")
        if result.problem:
            err.print(f"[bold red]the session ended early:[/] {escape(result.problem)}")
        if result.ended_by in (EndedBy.ESCAPE, EndedBy.DISK_GUARD) and len(result.kept) < options.episodes:
            out.print(
                f"{len(result.kept)} of {options.episodes} episodes recorded; run the same command with --resume "
                "to record the rest"
            )
    if result.ended_by is EndedBy.DEVICE_LOST:
        return ExitCode.UNREACHABLE
    if result.ended_by in (EndedBy.ARMING, EndedBy.RECORDER):
        return ExitCode.FAILED
    if sync is not None and (sync.convert_error or sync.missing or (sync.convert and sync.convert.failed)):
        return ExitCode.PARTIAL
    if result.ended_by is EndedBy.DISK_GUARD:
        return ExitCode.PARTIAL
    return ExitCode.OK


def _report_abort(report, options) -> None:
    console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
    if report.held:
        console.print("interrupted: the device is idle and holding the arm.", style="bold")
    else:
        console.print(
            f"interrupted, and the device could not be put on hold ({report.hold_error}); stop it from the "
            "device page (its MCU holds the arm by itself if the daemon stops).",
            style="bold red",
        )
    if report.stopped_episode is not None:
        entry = report.stopped_episode
        console.print(
            f"episode {entry.number} ({entry.episode_id}) was stopped after {entry.duration_s:.1f} s; it stays "
            "on the device but is left out of the dataset."
        )
    console.print(
        f"{len(report.kept)} finished episode(s) are safe on the device and listed in {report.journal_path}; "
        f"run the same command with --resume to continue and build the dataset at {options.out_dir}."
    )


@contextlib.contextmanager
def _interrupts_as_keyboard() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP (terminal closed) all end the session the same way: device on hold first.

    SIGINT is installed explicitly: a shell starts background jobs with it ignored, and Ctrl-C must still work.
    """

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {
        sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
