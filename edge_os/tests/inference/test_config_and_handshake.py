"""Configuration validation and the session contract checks (pure functions)."""

from __future__ import annotations

import dataclasses

import pytest
from spinal.protocol import SessionAck, Status
from spinal_edge.inference import (
    BackoffSettings,
    ContractViolation,
    InferenceConfig,
    InferenceConfigError,
    RobotSpec,
    ServerUnavailable,
    SessionRefused,
)
from spinal_edge.inference.handshake import check_same_contract, check_status, session_info_from_ack
from spinal_edge.inference.types import SO101_ACTION_NAMES

ROBOT = RobotSpec(cameras=("front", "wrist"), fps=30.0)


# ---- config ----------------------------------------------------------------------------------------


def test_defaults_form_a_usable_config_with_a_fresh_client_uuid():
    a, b = InferenceConfig(model_id="act-towels"), InferenceConfig(model_id="act-towels")
    assert a.client_uuid != b.client_uuid
    assert a.service_keys().prefix == "@lerobot/act-towels/main/default"
    assert a.degraded_after_s <= a.reconnect_after_s <= a.max_offline_s


def test_the_task_names_the_service_unless_a_service_is_given():
    assert (
        InferenceConfig(model_id="m", task="fold the towel").service_keys().prefix.endswith("/fold-the-towel")
    )
    cfg = InferenceConfig(model_id="m", task="fold the towel", service="towels")
    assert cfg.service_keys().prefix.endswith("/towels")


@pytest.mark.parametrize(
    ("fields", "field", "hint"),
    [
        ({"endpoints": ["192.168.1.10:7447"]}, "endpoints", "tcp/192.168.1.10:7447"),
        ({"fallback": "brake"}, "fallback", "hold"),
        ({"jpeg_quality": 101}, "jpeg_quality", "100"),
        ({"degraded_after_s": 10.0}, "(top level)", "degraded_after_s <= reconnect_after_s"),
        ({"key_root": "lerobot"}, "(top level)", "verbatim"),
        ({"client_uuid": "status"}, "client_uuid", "reserved"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
    ],
)
def test_bad_fields_are_named_with_the_source_and_a_fix(fields, field, hint):
    with pytest.raises(InferenceConfigError) as err:
        InferenceConfig.load({"model_id": "m", **fields}, source="/etc/spinal/edge.yaml")
    message = str(err.value)
    assert message.startswith("/etc/spinal/edge.yaml: field ") and f"'{field}'" in message
    assert hint in message and "fix it" in message


def test_a_user_uuid_is_made_a_safe_key_chunk():
    assert InferenceConfig(model_id="m", client_uuid="robot #217").client_uuid == "robot-217"


def test_backoff_doubles_up_to_its_cap_with_bounded_jitter():
    b = BackoffSettings(initial_s=0.5, max_s=4.0, multiplier=2.0, jitter=0.1)
    assert [b.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert 0.45 <= b.delay(0, 0.0) < b.delay(0, 0.999) <= 0.55


def test_robot_spec_refuses_duplicates_and_absurd_rates():
    with pytest.raises(InferenceConfigError, match="unique"):
        RobotSpec(action_names=("a.pos", "a.pos"))
    with pytest.raises(InferenceConfigError, match="fps"):
        RobotSpec(fps=0)
    assert RobotSpec(fps=50).dt == pytest.approx(0.02)


# ---- handshake checks ----------------------------------------------------------------------------------


def status(**kw) -> Status:
    base = dict(
        action_names=list(SO101_ACTION_NAMES), expected_cameras=["front"], state_dim=6, model_repo="m"
    )
    base.update(kw)
    return Status(**base)


def ack(**kw) -> SessionAck:
    base = dict(
        accepted=True, session_id="s1", model_repo="m", model_revision="main", model_fingerprint="sha256:aa",
        action_names=list(SO101_ACTION_NAMES), expected_cameras=["front"], state_dim=6, chunk_size=50,
        supports_rtc=True, rtc_execution_horizon=8, warmed_up=True,
    )  # fmt: skip
    base.update(kw)
    return SessionAck(**base)


def test_status_checks_schema_drain_and_layout():
    check_status(status(), ROBOT)
    with pytest.raises(ContractViolation, match="schema"):
        check_status(status(min_schema_version=2, max_schema_version=3), ROBOT)
    with pytest.raises(ServerUnavailable, match="draining"):
        check_status(status(draining=True), ROBOT)
    with pytest.raises(ContractViolation, match="names and order"):
        check_status(status(action_names=list(reversed(SO101_ACTION_NAMES))), ROBOT)
    with pytest.raises(ContractViolation, match="state of 7"):
        check_status(status(state_dim=7), ROBOT)
    with pytest.raises(ContractViolation, match="top"):
        check_status(status(expected_cameras=["front", "top"]), ROBOT)


def test_an_ack_becomes_session_info_with_the_effective_rtc():
    cfg = InferenceConfig(model_id="m", rtc={"enabled": True, "execution_horizon": 10})
    info = session_info_from_ack(ack(), cfg, ROBOT)
    assert info.rtc and info.rtc_execution_horizon == 8 and info.chunk_size == 50
    assert not session_info_from_ack(ack(rtc_downgraded=True), cfg, ROBOT).rtc
    assert not session_info_from_ack(ack(supports_rtc=False), cfg, ROBOT).rtc
    off = InferenceConfig(model_id="m", rtc={"enabled": False})
    assert not session_info_from_ack(ack(), off, ROBOT).rtc


def test_a_refused_or_incomplete_ack_is_retryable_and_a_wrong_layout_is_not():
    cfg = InferenceConfig(model_id="m")
    with pytest.raises(SessionRefused, match="server full"):
        session_info_from_ack(ack(accepted=False, error="server full: 4/4 sessions active"), cfg, ROBOT)
    with pytest.raises(SessionRefused, match="session_id"):
        session_info_from_ack(ack(session_id=""), cfg, ROBOT)
    with pytest.raises(ContractViolation):
        session_info_from_ack(ack(action_names=["joint_0.pos"]), cfg, ROBOT)


def test_reconnecting_to_the_same_model_passes_and_anything_else_is_a_violation():
    cfg = InferenceConfig(model_id="m")
    first = session_info_from_ack(ack(), cfg, ROBOT)
    check_same_contract(first, dataclasses.replace(first, session_id="s2"))
    with pytest.raises(ContractViolation, match="another model"):
        check_same_contract(first, dataclasses.replace(first, model_fingerprint="sha256:bb"))
    unprinted = dataclasses.replace(first, model_fingerprint="")
    with pytest.raises(ContractViolation, match="another model"):
        check_same_contract(unprinted, dataclasses.replace(unprinted, model_revision="v2"))
    with pytest.raises(ContractViolation, match="action layout"):
        check_same_contract(first, dataclasses.replace(first, action_names=first.action_names[::-1]))
    with pytest.raises(ContractViolation, match="RTC"):
        check_same_contract(first, dataclasses.replace(first, rtc=False))
