"""The demo's live status: redrawn on a terminal, plain lines every few seconds (and on changes) elsewhere."""

from __future__ import annotations

import io

from spinal_edge.demo import StatusPrinter, status_key


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _status(mode: str = "policy", inference: str = "streaming", recorder: str = "idle") -> dict:
    return {"mode": mode, "inference": {"state": inference}, "recorder": {"state": recorder}, "warnings": []}


def test_without_a_terminal_a_plain_line_comes_every_few_seconds_and_at_each_change() -> None:
    out, clock = io.StringIO(), _Clock()
    printer = StatusPrinter(out, interactive=False, every_s=5.0, clock=clock)
    for tick in range(40):  # 20 s of updates twice a second
        clock.now = tick * 0.5
        status = _status(inference="connecting" if tick < 7 else "streaming")
        printer.status(f"t={clock.now:.1f} {status['inference']['state']}", status_key(status))
    printer.message("spinal demo: episode X kept: 180 frames, 6.02 s")
    printer.end()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue(), "no terminal control codes in a log"
    assert lines == [
        "t=0.0 connecting",
        "t=3.5 streaming",  # the state changed: at once
        "t=8.5 streaming",
        "t=13.5 streaming",
        "t=18.5 streaming",
        "spinal demo: episode X kept: 180 frames, 6.02 s",
    ]


def test_on_a_terminal_the_line_is_redrawn_and_events_get_a_line_of_their_own() -> None:
    out = io.StringIO()
    printer = StatusPrinter(out, interactive=True)
    printer.status("policy | one", status_key(_status()))
    printer.status("policy | two", status_key(_status()))
    printer.message("spinal demo: episode X kept")
    printer.status("policy | three", status_key(_status()))
    printer.end()
    assert out.getvalue() == (
        "\r\x1b[Kpolicy | one\r\x1b[Kpolicy | two\r\x1b[Kspinal demo: episode X kept\n\r\x1b[Kpolicy | three\n"
    )
