"""Arm calibration: per-joint servo id, range and homing offset, and the raw-tick <-> LeRobot unit conversions.

The JSON file has the shape LeRobot writes for an SO-101 (`{"shoulder_pan": {"id": 1, "drive_mode": 0,
"homing_offset": 0, "range_min": 758, "range_max": 3292}, ...}`), so existing calibrations load as they are.
Used by the edge daemon to turn STATE/LEADER positions into `shoulder_pan.pos` ... and actions into targets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from spinal.fsutil import write_text_atomic
from spinal.robots import SO101_JOINTS

from spinal_edge.mcu.errors import CalibrationError
from spinal_edge.mcu.messages import JointLimits, LinkConfig

"""Motor names of an SO-101 arm, in servo-id order 1..6, as LeRobot names them."""

RESOLUTION = 4096
_MAX_RES = RESOLUTION - 1


class NormMode(StrEnum):
    """How a joint's raw ticks map to the numbers a policy sees (LeRobot's MotorNormMode values)."""

    RANGE_M100_100 = "range_m100_100"
    RANGE_0_100 = "range_0_100"
    DEGREES = "degrees"


@dataclass(frozen=True)
class JointCalibration:
    """One joint. `homing_offset` is what LeRobot wrote into the servo's Homing_Offset register: positions on
    the link already include it, so conversions use `range_min`/`range_max` only."""

    name: str
    id: int
    range_min: int
    range_max: int
    homing_offset: int = 0
    drive_mode: int = 0
    norm_mode: NormMode = NormMode.RANGE_M100_100

    def to_value(self, raw: float) -> float:
        """Raw ticks -> normalized value (clamped to the calibrated range first, as LeRobot does)."""
        lo, hi = self.range_min, self.range_max
        if self.norm_mode is NormMode.DEGREES:
            return (raw - (lo + hi) / 2) * 360 / _MAX_RES
        bounded = min(hi, max(lo, raw))
        if self.norm_mode is NormMode.RANGE_M100_100:
            return (bounded - lo) / (hi - lo) * 200 - 100
        return (bounded - lo) / (hi - lo) * 100

    def to_raw(self, value: float) -> int:
        """Normalized value -> raw ticks, clamped to the calibrated range (never outside what the MCU allows)."""
        lo, hi = self.range_min, self.range_max
        if self.norm_mode is NormMode.DEGREES:
            raw = value * _MAX_RES / 360 + (lo + hi) / 2
        elif self.norm_mode is NormMode.RANGE_M100_100:
            raw = (min(100.0, max(-100.0, value)) + 100) / 200 * (hi - lo) + lo
        else:
            raw = min(100.0, max(0.0, value)) / 100 * (hi - lo) + lo
        return int(round(min(hi, max(lo, raw))))

    def to_json(self) -> dict[str, int]:
        return {
            "id": self.id,
            "drive_mode": self.drive_mode,
            "homing_offset": self.homing_offset,
            "range_min": self.range_min,
            "range_max": self.range_max,
        }


@dataclass(frozen=True)
class ArmCalibration:
    """An arm's joints in order. Feature names are `<joint>.pos`, LeRobot's observation/action keys."""

    joints: tuple[JointCalibration, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"{j.name}.pos" for j in self.joints)

    @property
    def servo_ids(self) -> tuple[int, ...]:
        return tuple(j.id for j in self.joints)

    def to_features(self, raw: Sequence[float]) -> dict[str, float]:
        """Raw positions in joint order (a STATE or LEADER message) -> {"shoulder_pan.pos": ..., ...}."""
        if len(raw) != len(self.joints):
            raise CalibrationError(
                f"{len(raw)} positions given for a {len(self.joints)}-joint calibration: the MCU config and the "
                "calibration file describe different arms"
            )
        return {f"{j.name}.pos": j.to_value(v) for j, v in zip(self.joints, raw, strict=True)}

    def to_raw(self, features: Mapping[str, float]) -> list[int]:
        """{"shoulder_pan.pos": ..., ...} -> raw targets in joint order."""
        missing = [n for n in self.feature_names if n not in features]
        if missing:
            raise CalibrationError(f"action lacks {', '.join(missing)}: give every joint of the arm a value")
        return [j.to_raw(features[f"{j.name}.pos"]) for j in self.joints]

    def link_config(
        self,
        *,
        max_step: int = 20,
        leader: ArmCalibration | None = None,
        leader_bus: int = 1,
        link_timeout_ms: int = 200,
        rate_hz: int = 0,
        state_every: int = 1,
    ) -> LinkConfig:
        """The MCU configuration that enforces this calibration's ranges as hard joint limits."""
        return LinkConfig(
            joints=tuple(JointLimits(j.id, j.range_min, j.range_max, max_step) for j in self.joints),
            leader_ids=leader.servo_ids if leader is not None else (),
            leader_bus=leader_bus,
            link_timeout_ms=link_timeout_ms,
            rate_hz=rate_hz,
            state_every=state_every,
        )

    # ---- files ------------------------------------------------------------------------------------------------

    @classmethod
    def from_json(
        cls, data: object, *, source: str = "calibration", use_degrees: bool = False
    ) -> ArmCalibration:
        """Validate a LeRobot-shaped mapping. Joint named `gripper` is 0..100; others -100..100 or degrees."""
        if not isinstance(data, Mapping) or not data:
            raise CalibrationError(
                f'{source}: expected an object of joints, e.g. {{"shoulder_pan": {{...}}}}'
            )
        joints = []
        for name, entry in data.items():
            if not isinstance(entry, Mapping):
                raise CalibrationError(
                    f"{source}: joint {name!r} must be an object with id, range_min, range_max"
                )
            fields = {}
            for key in ("id", "range_min", "range_max", "homing_offset", "drive_mode"):
                value = entry.get(key, 0 if key in ("homing_offset", "drive_mode") else None)
                if not isinstance(value, int) or isinstance(value, bool):
                    raise CalibrationError(f"{source}: {name}.{key} must be an integer, got {value!r}")
                fields[key] = value
            if not 0 <= fields["id"] < 0xFE:
                raise CalibrationError(f"{source}: {name}.id {fields['id']} is out of range: use 0..253")
            if not 0 <= fields["range_min"] < fields["range_max"] <= _MAX_RES:
                raise CalibrationError(
                    f"{source}: {name} range {fields['range_min']}..{fields['range_max']} must satisfy "
                    f"0 <= range_min < range_max <= {_MAX_RES}; recalibrate the joint"
                )
            if name == "gripper":
                mode = NormMode.RANGE_0_100
            else:
                mode = NormMode.DEGREES if use_degrees else NormMode.RANGE_M100_100
            joints.append(JointCalibration(name=str(name), norm_mode=mode, **fields))
        ids = [j.id for j in joints]
        if len(set(ids)) != len(ids):
            raise CalibrationError(f"{source}: servo ids {ids} repeat; each joint needs its own id")
        return cls(tuple(joints))

    @classmethod
    def load(cls, path: str | Path, *, use_degrees: bool = False) -> ArmCalibration:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CalibrationError(
                f"{path}: no calibration file; calibrate the arm or copy its file here"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CalibrationError(
                f"{path}: cannot read calibration ({exc}); restore or recreate the file"
            ) from exc
        return cls.from_json(data, source=str(path), use_degrees=use_degrees)

    def save(self, path: str | Path) -> None:
        """Write atomically (`spinal.fsutil`), so a power cut never leaves half a calibration."""
        text = json.dumps({j.name: j.to_json() for j in self.joints}, indent=4) + "\n"
        write_text_atomic(path, text, mode=0o644, make_parents=True)

    @classmethod
    def so101_default(cls, *, use_degrees: bool = False) -> ArmCalibration:
        """A nominal SO-101: ids 1..6, every joint over 1024..3072 ticks (+-90 degrees about the middle)."""
        data = {
            name: {"id": i + 1, "range_min": 1024, "range_max": 3072} for i, name in enumerate(SO101_JOINTS)
        }
        return cls.from_json(data, source="so101 default", use_degrees=use_degrees)
