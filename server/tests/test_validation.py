"""The session-open validation matrix and serving-mode resolution, without a network."""

from __future__ import annotations

from dataclasses import replace

import pytest
from spinal.protocol import SessionOpen
from spinal_server.demo_policy import SO101_ACTIONS
from spinal_server.errors import ManifestError
from spinal_server.validation import ServiceCapabilities, resolve_serving_mode, validate_session_open

NAMES = SO101_ACTIONS
CAPS = ServiceCapabilities(
    model_repo="act",
    model_revision="main",
    policy_type="act",
    action_names=NAMES,
    camera_shapes={"front": [96, 128]},
    state_dim=6,
    chunk_size=40,
    trained_fps=30.0,
    supports_rtc=False,
    rtc_execution_horizon=0,
    serving_mode="shared",
    max_sessions=2,
    default_task="stack the cubes",
    pin_task=False,
    strict_fps=False,
    model_fingerprint="sha256:00",
    batchable=True,
)


def open_msg(**fields) -> SessionOpen:
    base = dict(client_uuid="robot-1", action_names=NAMES, camera_names=["front"], state_dim=6, fps=30.0)
    base.update(fields)
    return SessionOpen(**base)


@pytest.mark.parametrize(
    ("msg", "caps", "others", "error"),
    [
        (open_msg(schema_version=2), CAPS, 0, "schema_version 2 is not supported"),
        (open_msg(schema_version=0), CAPS, 0, "schema_version 0 is not supported"),
        (open_msg(client_uuid=""), CAPS, 0, "client_uuid is not usable"),
        (open_msg(client_uuid="robot 1/x"), CAPS, 0, "must be key-safe; use 'robot-1-x'"),
        (open_msg(client_uuid="status"), CAPS, 0, "reserved key chunk"),
        (open_msg(), CAPS, 2, "server full: 2/2"),
        (open_msg(action_names=NAMES[::-1]), CAPS, 0, "different order"),
        (open_msg(action_names=NAMES[:5]), CAPS, 0, "do not match"),
        (open_msg(state_dim=7), CAPS, 0, "state_dim 7 does not match the policy's 6"),
        (open_msg(camera_names=["wrist"]), CAPS, 0, "cameras ['front'] are missing"),
        (open_msg(task="unstack"), replace(CAPS, pin_task=True), 0, "pinned to 'stack the cubes'"),
        (open_msg(fps=15.0), replace(CAPS, strict_fps=True), 0, "strict_fps"),
    ],
)
def test_hard_failures_refuse_with_one_sentence(msg, caps, others, error) -> None:
    decision = validate_session_open(msg, caps, active_others=others)
    assert not decision.accepted and error in decision.error


def test_draining_server_refuses_everyone() -> None:
    decision = validate_session_open(open_msg(), CAPS, active_others=0, draining=True)
    assert not decision.accepted and "draining" in decision.error


def test_soft_mismatches_are_warnings_and_rtc_is_downgraded() -> None:
    msg = open_msg(
        fps=15.0,
        policy_type="pi0",
        camera_names=["front", "wrist"],
        camera_shapes={"front": [480, 480]},
        rtc_enabled=True,
    )
    decision = validate_session_open(msg, CAPS, active_others=1)
    assert decision.accepted and decision.rtc_downgraded and not decision.rtc_enabled
    text = " | ".join(decision.warnings)
    for part in ("fps 15", "policy_type 'pi0'", "['wrist'] are not used", "aspect ratio", "downgraded"):
        assert part in text
    assert decision.task == "stack the cubes"  # the default task when the client names none


def test_rtc_is_kept_when_the_policy_supports_it_and_same_aspect_is_silent() -> None:
    msg = open_msg(rtc_enabled=True, camera_shapes={"front": [480, 640]}, task="stack the cubes")
    decision = validate_session_open(msg, replace(CAPS, supports_rtc=True, pin_task=True), active_others=0)
    assert (
        decision.accepted and decision.rtc_enabled and not decision.rtc_downgraded and decision.warnings == []
    )


def test_zero_sizes_skip_their_checks() -> None:
    decision = validate_session_open(open_msg(state_dim=0, fps=0.0), CAPS, active_others=0)
    assert decision.accepted and decision.warnings == []


@pytest.mark.parametrize(
    ("requested", "stateless", "mode", "sessions"),
    [
        ("auto", True, "shared", 5),
        ("auto", False, "exclusive", 1),
        ("exclusive", True, "exclusive", 1),
        ("shared", True, "shared", 5),
    ],
)
def test_serving_mode_follows_the_model(requested: str, stateless: bool, mode: str, sessions: int) -> None:
    got_mode, got_sessions, _ = resolve_serving_mode(requested, stateless, 5)
    assert (got_mode, got_sessions) == (mode, sessions)


def test_shared_mode_on_a_stateful_model_is_refused() -> None:
    with pytest.raises(ManifestError, match="unsafe"):
        resolve_serving_mode("shared", False, 5)
