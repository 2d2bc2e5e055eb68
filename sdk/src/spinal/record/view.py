"""What the person sees: a live rich panel on a terminal (`LiveView`) or progress lines for scripts (`PlainView`).

`RecordSession` fills a `ViewModel` and calls `update()` every loop tick and `event()` on every transition.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from spinal.record.snapshot import DeviceSnapshot

EVENTS_SHOWN = 6
BAR_WIDTH = 30


class Phase(StrEnum):
    CONNECTING = "connecting"
    ARMING = "arming"
    RECORDING = "recording"
    CONFIRM = "keep?"
    RESET = "reset"
    PAUSED = "paused"
    STOPPING = "stopping"
    DATASET = "dataset"
    DONE = "done"


_PHASE_STYLE = {
    Phase.CONNECTING: "cyan",
    Phase.ARMING: "cyan",
    Phase.RECORDING: "bold white on red",
    Phase.CONFIRM: "bold black on yellow",
    Phase.RESET: "bold black on yellow",
    Phase.PAUSED: "bold white on magenta",
    Phase.STOPPING: "yellow",
    Phase.DATASET: "bold white on blue",
    Phase.DONE: "bold white on green",
}

_KEYS_HELP = {
    Phase.RECORDING: "→ end episode   ← discard and re-record   Esc stop the session   Ctrl-C abort",
    Phase.RESET: "→ skip the reset   Esc stop the session",
    Phase.ARMING: "Esc stop the session   Ctrl-C abort",
    Phase.PAUSED: "Esc stop waiting and end the session   Ctrl-C abort",
    Phase.CONFIRM: "k keep   d discard",
}


@dataclass
class ViewModel:
    """Everything the screen shows; the session owns it and changes it."""

    repo_id: str
    device_url: str
    mode: str
    target: int
    phase: Phase = Phase.CONNECTING
    number: int = 0
    task: str = ""
    time_left_s: float | None = None
    time_total_s: float | None = None
    snapshot: DeviceSnapshot | None = None
    connection: str = ""  # set while the device does not answer
    kept: int = 0
    rerecorded: int = 0
    interrupted: int = 0
    dataset_line: str = ""
    prompt: str = ""
    can_rerecord: bool = False  # during a reset: ← discards the episode just kept
    warnings: list[str] = field(default_factory=list)
    events: deque[str] = field(default_factory=lambda: deque(maxlen=EVENTS_SHOWN))


class SessionView(Protocol):
    def update(self, model: ViewModel) -> None: ...

    def event(self, model: ViewModel, text: str) -> None: ...

    def close(self) -> None: ...


def render(model: ViewModel) -> RenderableType:
    """The live panel for `model` (also used by tests to check the screen's text)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    header = Text()
    header.append(f" {model.phase.value.upper()} ", style=_PHASE_STYLE[model.phase])
    if model.number:
        header.append(f"  Episode {model.number}/{model.target}")
    if model.time_left_s is not None and model.time_total_s:
        left = max(0.0, model.time_left_s)
        done = 1.0 - min(1.0, left / model.time_total_s)
        filled = round(done * BAR_WIDTH)
        header.append("  " + "█" * filled + "░" * (BAR_WIDTH - filled))
        header.append(f"  {left:5.1f} s left")
    grid.add_row("", header)
    grid.add_row("task", Text(model.task or "-"))
    snap = model.snapshot
    if model.connection:
        grid.add_row("device", Text(model.connection, style="bold red"))
    elif snap is None:
        grid.add_row("device", Text("connecting ...", style="dim"))
    if snap is not None:
        if not model.connection:
            grid.add_row("device", _device_line(snap))
        grid.add_row("cameras", Text(_cameras_line(snap)))
        grid.add_row("recorder", Text(_recorder_line(snap)))
    grid.add_row(
        "session",
        Text(
            f"kept {model.kept}/{model.target} · re-recorded {model.rerecorded} · interrupted {model.interrupted}"
            f" · mode {model.mode}"
        ),
    )
    if model.dataset_line:
        grid.add_row("dataset", Text(model.dataset_line))
    warnings = list(model.warnings)
    if snap is not None:
        warnings += [f"device: {w.code}: {w.message}" for w in snap.warnings[:3]]
    for i, warning in enumerate(warnings[:5]):
        grid.add_row("warnings" if i == 0 else "", Text(_clip(warning, 160), style="yellow"))
    parts: list[RenderableType] = [grid]
    if model.events:
        parts.append(Text("\n".join(model.events), style="dim"))
    if model.prompt:
        parts.append(Text(model.prompt, style="bold yellow"))
    help_line = _KEYS_HELP.get(model.phase)
    if model.phase is Phase.RESET and model.can_rerecord:
        help_line = "→ skip the reset   ← re-record the last episode   Esc stop the session"
    if help_line:
        parts.append(Text(help_line, style="cyan"))
    return Panel(
        Group(*parts),
        title=f"spinal record → {model.repo_id}",
        subtitle=model.device_url,
        border_style="red" if model.phase is Phase.RECORDING else "blue",
    )


def _device_line(snap: DeviceSnapshot) -> Text:
    line = Text(snap.mode or "?", style="bold")
    inference = snap.inference_state or "off"
    line.append(f" · inference {inference}")
    if snap.inference_ready:
        line.append(" (ready)")
    if snap.queue_depth is not None and snap.inference_engine not in ("", "none"):
        line.append(f" q={snap.queue_depth}")
    line.append(f" · loop {snap.loop_hz:.1f} Hz" if snap.loop_hz else " · loop -")
    return line


def _cameras_line(snap: DeviceSnapshot) -> str:
    if not snap.camera_fps:
        return "none"
    return ", ".join(f"{name} {fps:.1f} fps" for name, fps in snap.camera_fps.items())


def _recorder_line(snap: DeviceSnapshot) -> str:
    if snap.recorder_state is None:
        return "off on the device"
    parts = [snap.recorder_state]
    if snap.episode is not None:
        parts.append(f"{snap.episode.frames} frames, {snap.episode.duration_s:.1f} s")
    if snap.free_bytes is not None:
        parts.append(f"disk free {snap.free_bytes / 1e9:.1f} GB")
    return " · ".join(parts)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class LiveView:
    """A rich Live panel redrawn at every update (the session loop runs at about 10 Hz)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._live: Live | None = None

    def update(self, model: ViewModel) -> None:
        if self._live is None:
            self._live = Live(
                render(model),
                console=self.console,
                auto_refresh=False,
                redirect_stderr=False,
                transient=False,
            )
            self._live.start()
        self._live.update(render(model), refresh=True)

    def event(self, model: ViewModel, text: str) -> None:
        model.events.append(f"{time.strftime('%H:%M:%S')} {text}")
        self.update(model)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


class PlainView:
    """One line per event and a progress line every `every_s` while recording, on stdout (for scripts)."""

    def __init__(self, stream: TextIO | None = None, *, every_s: float = 5.0) -> None:
        self.stream = stream or sys.stdout
        self.every_s = every_s
        self._last_progress = 0.0
        self._lost_since = 0.0
        self._last_lost_line = 0.0

    def _print(self, text: str) -> None:
        self.stream.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
        self.stream.flush()

    def update(self, model: ViewModel) -> None:
        now = time.monotonic()
        if model.connection and (not self._lost_since or now - self._last_lost_line >= self.every_s * 2):
            self._lost_since = self._lost_since or now
            self._last_lost_line = now
            self._print(f"device: {model.connection}")
        elif not model.connection:
            self._lost_since = 0.0
        if model.phase is Phase.RECORDING and now - self._last_progress >= self.every_s:
            self._last_progress = now
            snap = model.snapshot
            frames = snap.episode.frames if snap is not None and snap.episode is not None else 0
            left = f"{max(0.0, model.time_left_s or 0.0):.1f} s left"
            device = f"{snap.mode}, inference {snap.inference_state or 'off'}" if snap is not None else "?"
            self._print(
                f"episode {model.number}/{model.target}: recording, {left}, {frames} frames ({device})"
            )

    def event(self, model: ViewModel, text: str) -> None:
        model.events.append(text)
        self._last_progress = time.monotonic()
        self._print(text)

    def close(self) -> None:
        self.stream.flush()
