"""Fixtures of the HIL scenarios: a cell (rig + McuLink) on the simulated rig, or on a real Pico when
$SPINAL_HIL_PORT names its serial port; and the run report written to test-artifacts/hil/report.md."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import pytest
from spinal_edge.mcu import McuLinkError
from spinal_hil.cell import Cell
from spinal_hil.report import HilReport, artifacts_dir
from spinal_hil.rig import HardwareRig, SimulatedRig

HARDWARE_PORT = os.environ.get("SPINAL_HIL_PORT")


def _build_rig(leader: bool, **kw: object) -> SimulatedRig | HardwareRig:
    if HARDWARE_PORT:
        return HardwareRig(HARDWARE_PORT, leader=leader).start()
    return SimulatedRig(leader=leader, **kw).start()  # type: ignore[arg-type]


@pytest.fixture
def make_cell(request: pytest.FixtureRequest, hil_report: HilReport) -> Iterator[Callable[..., Cell]]:
    made: list[Cell] = []

    # 1 s watchdog unless a scenario is about the watchdog: a test process stalled by a loaded machine must not
    # trip HOLD in scenarios that test something else.
    def make(leader: bool = False, link_timeout_ms: int = 1000, max_step: int = 20, **rig_kw: object) -> Cell:
        rig = _build_rig(leader, **rig_kw)
        try:
            cell = Cell.connect(rig, leader=leader, link_timeout_ms=link_timeout_ms, max_step=max_step)
        except BaseException:
            rig.stop()
            raise
        made.append(cell)
        return cell

    yield make
    outcome = getattr(request.node, "rep_call", None)
    for cell in made:
        with contextlib.suppress(McuLinkError, TimeoutError):
            cell.link.set_torque(False).result(1)
        cell.link.close()
        counters = cell.link.counters()
        state = cell.link.latest_state
        metrics: dict[str, object] = {
            "host frames rx/tx": f"{counters.frames_rx}/{counters.frames_tx}",
            "host crc errors / bad frames / dropped": (
                f"{counters.crc_errors} / {counters.bad_frames} / {counters.dropped_frames}"
            ),
            "reconnects / restarts": f"{counters.reconnects} / {counters.restarts}",
        }
        if state is not None:
            metrics["MCU loop period mean/max us"] = f"{state.period_mean_us}/{state.period_max_us}"
            metrics["MCU loop work mean/max us"] = f"{state.work_mean_us}/{state.work_max_us}"
            metrics["MCU rx crc errors / bad frames"] = f"{state.rx_crc_errors} / {state.rx_bad_frames}"
            metrics["MCU ticks that allocated"] = state.alloc_ticks
        plot = None
        for rec in cell.recorders:
            if rec.samples:
                plot = rec.write(hil_report.out_dir)
                metrics.update(rec.metrics)
        name = request.node.name
        hil_report.add(name, outcome.outcome if outcome else "not run", metrics, plot)
        cell.rig.stop()


@pytest.fixture(scope="session")
def hil_report() -> Iterator[HilReport]:
    report = HilReport(artifacts_dir())
    yield report
    if report.sections:
        report.write()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep
