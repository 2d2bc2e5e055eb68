"""Calibration files in LeRobot's shape and the tick <-> LeRobot-unit conversions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spinal_edge.mcu import ArmCalibration, CalibrationError, JointCalibration, NormMode

LEROBOT_FILE = {
    "shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1012, "range_min": 758, "range_max": 3292},
    "shoulder_lift": {"id": 2, "drive_mode": 0, "homing_offset": 1001, "range_min": 826, "range_max": 3181},
    "elbow_flex": {"id": 3, "drive_mode": 0, "homing_offset": 1038, "range_min": 856, "range_max": 3075},
    "wrist_flex": {"id": 4, "drive_mode": 0, "homing_offset": 1146, "range_min": 849, "range_max": 3225},
    "wrist_roll": {"id": 5, "drive_mode": 0, "homing_offset": -1468, "range_min": 137, "range_max": 3926},
    "gripper": {"id": 6, "drive_mode": 0, "homing_offset": 1372, "range_min": 2037, "range_max": 3509},
}


def test_lerobot_file_loads_with_so101_feature_names(tmp_path: Path) -> None:
    path = tmp_path / "follower.json"
    path.write_text(json.dumps(LEROBOT_FILE))
    cal = ArmCalibration.load(path)
    assert cal.feature_names == (
        "shoulder_pan.pos",
        "shoulder_lift.pos",
        "elbow_flex.pos",
        "wrist_flex.pos",
        "wrist_roll.pos",
        "gripper.pos",
    )
    assert cal.servo_ids == (1, 2, 3, 4, 5, 6)
    assert cal.joints[0].homing_offset == -1012
    assert cal.joints[5].norm_mode is NormMode.RANGE_0_100
    assert cal.joints[0].norm_mode is NormMode.RANGE_M100_100


def test_range_m100_100_follows_lerobot_formula() -> None:
    j = JointCalibration("elbow_flex", 3, range_min=1000, range_max=3000)
    assert j.to_value(1000) == -100
    assert j.to_value(2000) == 0
    assert j.to_value(3000) == 100
    assert j.to_value(2500) == pytest.approx(50)
    assert j.to_value(10) == -100  # clamped to the calibrated range first, as LeRobot does


def test_gripper_is_zero_to_hundred() -> None:
    g = JointCalibration("gripper", 6, range_min=2000, range_max=3000, norm_mode=NormMode.RANGE_0_100)
    assert g.to_value(2000) == 0 and g.to_value(2750) == pytest.approx(75) and g.to_value(4000) == 100
    assert g.to_raw(25) == 2250


def test_degrees_are_relative_to_the_middle_of_the_range() -> None:
    j = JointCalibration("wrist_flex", 4, range_min=1000, range_max=3000, norm_mode=NormMode.DEGREES)
    assert j.to_value(2000) == 0
    assert j.to_value(2000 + 4095 / 4) == pytest.approx(90)
    assert j.to_raw(-45) == round(2000 - 4095 / 8)
    assert j.to_raw(-90) == 1000  # beyond the calibrated range: clamped to it


@given(st.integers(758, 3292))
def test_ticks_survive_a_round_trip_within_one_tick(raw: int) -> None:
    j = ArmCalibration.from_json(LEROBOT_FILE).joints[0]
    assert abs(j.to_raw(j.to_value(raw)) - raw) <= 1


@given(st.floats(-1e6, 1e6, allow_nan=False))
def test_to_raw_never_leaves_the_calibrated_range(value: float) -> None:
    for j in ArmCalibration.from_json(LEROBOT_FILE, use_degrees=True).joints:
        assert j.range_min <= j.to_raw(value) <= j.range_max


def test_features_round_trip_for_the_whole_arm() -> None:
    cal = ArmCalibration.from_json(LEROBOT_FILE)
    raw = [1000, 2000, 3000, 1500, 2048, 2500]
    assert cal.to_raw(cal.to_features(raw)) == pytest.approx(raw, abs=1)


def test_action_missing_a_joint_names_it() -> None:
    cal = ArmCalibration.so101_default()
    with pytest.raises(CalibrationError, match="gripper.pos"):
        cal.to_raw({f"{n}.pos": 0.0 for n in cal.names[:-1]})


def test_link_config_enforces_calibrated_ranges_and_names_the_leader() -> None:
    cal = ArmCalibration.from_json(LEROBOT_FILE)
    config = cal.link_config(max_step=12, leader=ArmCalibration.so101_default(), link_timeout_ms=150)
    assert [(j.servo_id, j.min_ticks, j.max_ticks, j.max_step) for j in config.joints][0] == (
        1,
        758,
        3292,
        12,
    )
    assert config.leader_ids == (1, 2, 3, 4, 5, 6) and config.link_timeout_ms == 150


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "cannot read calibration"),
        ("[]", "expected an object of joints"),
        ('{"gripper": 3}', "joint 'gripper' must be an object"),
        ('{"gripper": {"id": 6, "range_min": 10}}', "gripper.range_max must be an integer"),
        ('{"gripper": {"id": 6, "range_min": 300, "range_max": 100}}', "range_min < range_max"),
        (
            '{"a": {"id": 1, "range_min": 0, "range_max": 9}, "b": {"id": 1, "range_min": 0, "range_max": 9}}',
            "repeat",
        ),
    ],
)
def test_bad_calibration_files_name_the_file_and_field(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "arm.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=words) as info:
        ArmCalibration.load(path)
    assert str(path) in str(info.value)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="no calibration file; calibrate the arm"):
        ArmCalibration.load(tmp_path / "nope.json")


def test_save_writes_lerobot_shape_and_leaves_no_temp_files(tmp_path: Path) -> None:
    cal = ArmCalibration.from_json(LEROBOT_FILE)
    path = tmp_path / "calib" / "follower.json"
    cal.save(path)
    assert json.loads(path.read_text()) == LEROBOT_FILE
    assert [p.name for p in path.parent.iterdir()] == ["follower.json"]
    assert ArmCalibration.load(path) == cal
