"""`spinal device episodes` as people read it: the episode id (what `pull --episode` takes) stays whole."""

from __future__ import annotations

import pytest
from rich.console import Console
from spinal.commands.device import episodes_table
from spinal.device import EpisodeSummary

IDS = ("20261121T092009.902Z-000001-1ef405", "20261121T092112.017Z-000002-77ab01")


@pytest.mark.parametrize("width", [80, 100, 160])
def test_episode_ids_are_printed_whole_at_any_terminal_width(width: int) -> None:
    listed = [
        EpisodeSummary(
            id=IDS[0],
            status="complete",
            task="follow the demo cycle",
            frames=90,
            duration_s=3.0,
            offered=True,
        ),
        EpisodeSummary(id=IDS[1], status="recovered", task="wave at the front camera", frames=9000),
    ]
    console = Console(width=width, record=True, color_system=None)
    console.print(episodes_table(listed))
    text = console.export_text()
    lines = text.splitlines()
    for episode_id in IDS:
        assert any(episode_id in line for line in lines), text
    assert max(len(line) for line in lines) <= width
