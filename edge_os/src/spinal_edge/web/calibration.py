"""The Robot page's calibration wizard: torque off, move each joint to both ends, record its range, save.

Samples the arm from its own thread while a joint is being recorded; the result is written in LeRobot's
SO-101 calibration shape (`{"shoulder_pan": {"id": 1, "range_min": ..., "range_max": ...}}`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from spinal.fsutil import write_json_atomic

from spinal_edge.web.errors import WebError

PositionSource = Callable[[], "np.ndarray | None"]
_SAMPLE_S = 0.02
_MIN_SPAN = 1e-6


class CalibrationError(WebError):
    """A calibration step does not fit the wizard's state, or a joint was not moved through a range."""


@dataclass
class JointRange:
    name: str
    servo_id: int
    low: float | None = None
    high: float | None = None
    recorded: bool = False


@dataclass
class _Run:
    joints: list[JointRange]
    current: int = 0
    saved_to: str = ""
    samples: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class CalibrationWizard:
    """One calibration at a time. `begin` -> (`record` per joint) -> `save`, or `cancel` at any point."""

    def __init__(self) -> None:
        self._run: _Run | None = None
        self._source: PositionSource | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(
        self, joint_names: tuple[str, ...], source: PositionSource, servo_ids: tuple[int, ...] = ()
    ) -> dict[str, Any]:
        """Start (or restart) the wizard over `joint_names`, sampling positions from `source`."""
        self.cancel()
        ids = servo_ids if len(servo_ids) == len(joint_names) else tuple(range(1, len(joint_names) + 1))
        self._run = _Run([JointRange(n, i) for n, i in zip(joint_names, ids, strict=True)])
        self._source = source
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample_loop, name="calibration", daemon=True)
        self._thread.start()
        return self.view()

    def record(self, joint: str) -> dict[str, Any]:
        """Freeze the range seen for `joint` (the current one) and move on to the next joint."""
        run = self._require()
        with run.lock:
            if run.current >= len(run.joints):
                raise CalibrationError("Every joint is recorded; press Save or start again.")
            current = run.joints[run.current]
            if joint != current.name:
                raise CalibrationError(f"The wizard is at {current.name}, not {joint}; reload the page.")
            if current.low is None or current.high is None or current.high - current.low <= _MIN_SPAN:
                raise CalibrationError(
                    f"{current.name} did not move; move it slowly to both of its ends, then press Record."
                )
            current.recorded = True
            run.current += 1
        return self.view()

    def save(self, path: Path) -> dict[str, Any]:
        """Write the recorded ranges (atomically) to `path`; the wizard ends."""
        run = self._require()
        with run.lock:
            missing = [j.name for j in run.joints if not j.recorded]
            if missing:
                raise CalibrationError(
                    f"{', '.join(missing)} not recorded yet; record every joint, then save."
                )
            data = {
                j.name: {
                    "id": j.servo_id,
                    "drive_mode": 0,
                    "homing_offset": 0,
                    "range_min": int(np.floor(j.low)),  # type: ignore[arg-type]
                    "range_max": int(np.ceil(j.high)),  # type: ignore[arg-type]
                }
                for j in run.joints
            }
        write_json_atomic(path, data, indent=4, mode=0o644, make_parents=True)
        view = self.view()
        view["saved_to"] = str(path)
        self.cancel()
        return view

    def cancel(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self._thread = None
        self._run = None

    def view(self) -> dict[str, Any]:
        """What the page shows: the active joint, each joint's range so far, whether saving is possible."""
        run = self._run
        if run is None:
            return {"active": False, "joints": [], "current": None, "complete": False}
        with run.lock:
            return {
                "active": True,
                "current": run.joints[run.current].name if run.current < len(run.joints) else None,
                "complete": all(j.recorded for j in run.joints),
                "samples": run.samples,
                "joints": [
                    {"name": j.name, "id": j.servo_id, "low": j.low, "high": j.high, "recorded": j.recorded}
                    for j in run.joints
                ],
            }

    def _require(self) -> _Run:
        if self._run is None:
            raise CalibrationError("No calibration is running; press Start calibration first.")
        return self._run

    def _sample_loop(self) -> None:
        while not self._stop.wait(_SAMPLE_S):
            run, source = self._run, self._source
            if run is None or source is None:
                return
            positions = source()
            if positions is None:
                continue
            with run.lock:
                if run.current >= len(run.joints) or run.current >= len(positions):
                    continue
                joint, value = run.joints[run.current], float(positions[run.current])
                joint.low = value if joint.low is None else min(joint.low, value)
                joint.high = value if joint.high is None else max(joint.high, value)
                run.samples += 1


def load_ranges(path: Path, joint_names: tuple[str, ...]) -> list[tuple[float, float]] | None:
    """The (min, max) per joint from a calibration file, or None when there is none usable."""
    try:
        data = json.loads(path.read_text())
        return [(float(data[n]["range_min"]), float(data[n]["range_max"])) for n in joint_names]
    except (OSError, ValueError, KeyError, TypeError):
        return None
