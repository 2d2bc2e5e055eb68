"""Shared pieces of the `spinal` command groups: exit codes, consoles, JSON output, byte formatting.

Imported by `spinal.commands.dataset` and `spinal.commands.device`.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any, NoReturn

import typer
from rich.console import Console

#: Human output goes to stdout; problems go to stderr so `--json` output stays clean for scripts.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class ExitCode(IntEnum):
    """What a `spinal` command's exit status means."""

    OK = 0
    FAILED = 1  # nothing was done: bad input, unusable folder, internal error
    USAGE = 2  # wrong arguments (typer's own code)
    PARTIAL = 3  # done, but some episodes were skipped or failed
    INVALID = 4  # a dataset has validation violations
    UNREACHABLE = 5  # the device did not answer or answered with an error
    AUTH = 6  # the device refused the token


def emit_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def fail(message: str, code: ExitCode = ExitCode.FAILED) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(int(code))


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
