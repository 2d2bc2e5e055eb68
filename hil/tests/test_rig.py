"""SimulatedRig set-up: its working directory and faults injected before the firmware boots."""

from __future__ import annotations

from pathlib import Path

from spinal_hil.rig import SimulatedRig


def test_rig_creates_a_workdir_that_does_not_exist_yet(tmp_path: Path) -> None:
    workdir = tmp_path / "runs" / "rig-1"
    with SimulatedRig(workdir=workdir) as rig:
        assert Path(rig.host_port).parent == workdir
        assert Path(rig.host_port).exists()
        assert rig.firmware is not None and rig.firmware.alive
    assert workdir.is_dir(), "a workdir the caller named is the caller's: it stays"
