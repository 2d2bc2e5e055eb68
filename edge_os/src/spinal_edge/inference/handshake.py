"""Checks of what a server offers against what the robot needs, and across reconnects.

Pure functions used by the chunk sources at session open and by the engine after every re-handshake.
"""

from __future__ import annotations

from spinal.protocol import (
    MAX_SUPPORTED_SCHEMA_VERSION,
    MIN_SUPPORTED_SCHEMA_VERSION,
    SessionAck,
    Status,
)

from spinal_edge.inference.config import InferenceConfig
from spinal_edge.inference.errors import ContractViolation, ServerUnavailable, SessionRefused
from spinal_edge.inference.source import SessionInfo
from spinal_edge.inference.types import RobotSpec


def check_status(status: Status, robot: RobotSpec) -> None:
    """Pre-flight on the `status` reply: schema overlap, not draining, the same action layout."""
    if status.max_schema_version < MIN_SUPPORTED_SCHEMA_VERSION or (
        status.min_schema_version > MAX_SUPPORTED_SCHEMA_VERSION
    ):
        raise ContractViolation(
            f"server speaks schema {status.min_schema_version}..{status.max_schema_version}, this edge"
            f" {MIN_SUPPORTED_SCHEMA_VERSION}..{MAX_SUPPORTED_SCHEMA_VERSION}; upgrade the older side"
        )
    if status.draining:
        raise ServerUnavailable("the policy server is draining (shutting down); waiting for a replacement")
    _check_layout(status.action_names, status.state_dim, status.expected_cameras, robot, status.model_repo)


def session_info_from_ack(ack: SessionAck, config: InferenceConfig, robot: RobotSpec) -> SessionInfo:
    """Accept a session ack or raise: refused (retryable) or a contract the robot cannot execute (fatal)."""
    if not ack.accepted:
        raise SessionRefused(f"policy server refused the session: {ack.error or 'no reason given'}")
    if not MIN_SUPPORTED_SCHEMA_VERSION <= ack.schema_version <= MAX_SUPPORTED_SCHEMA_VERSION:
        raise ContractViolation(
            f"server acknowledged schema {ack.schema_version}, outside this edge's"
            f" {MIN_SUPPORTED_SCHEMA_VERSION}..{MAX_SUPPORTED_SCHEMA_VERSION}"
        )
    if not ack.session_id:
        raise SessionRefused("policy server accepted the session but sent no session_id")
    _check_layout(ack.action_names, ack.state_dim, ack.expected_cameras, robot, ack.model_repo)
    rtc = config.rtc.enabled and ack.supports_rtc and not ack.rtc_downgraded
    horizon = config.rtc.execution_horizon
    if ack.rtc_execution_horizon > 0:
        horizon = min(horizon, ack.rtc_execution_horizon)
    return SessionInfo(
        session_id=ack.session_id,
        model_repo=ack.model_repo,
        model_revision=ack.model_revision,
        model_fingerprint=ack.model_fingerprint,
        policy_type=ack.policy_type,
        action_names=tuple(ack.action_names),
        expected_cameras=tuple(ack.expected_cameras),
        state_dim=ack.state_dim,
        chunk_size=ack.chunk_size,
        trained_fps=ack.trained_fps,
        rtc=rtc,
        rtc_execution_horizon=horizon if rtc else 0,
        serving_mode=ack.serving_mode,
        warmed_up=ack.warmed_up,
        warnings=tuple(ack.warnings),
    )


def check_same_contract(first: SessionInfo, new: SessionInfo) -> None:
    """A re-handshake must reach the same model and action layout; anything else is never executed."""
    if first.model_fingerprint or new.model_fingerprint:
        if first.model_fingerprint != new.model_fingerprint:
            raise ContractViolation(
                f"server came back with another model (fingerprint {first.model_fingerprint[:16]!r} ->"
                f" {new.model_fingerprint[:16]!r}); refusing its chunks"
            )
    elif (first.model_repo, first.model_revision) != (new.model_repo, new.model_revision):
        raise ContractViolation(
            f"server came back with another model ({first.model_repo}@{first.model_revision} ->"
            f" {new.model_repo}@{new.model_revision}); refusing its chunks"
        )
    if first.action_names != new.action_names:
        raise ContractViolation(
            f"server came back with another action layout {list(new.action_names)}"
            f" (was {list(first.action_names)}); refusing its chunks"
        )
    if first.rtc != new.rtc:
        raise ContractViolation(
            f"server came back with RTC {'on' if new.rtc else 'off'} (was {'on' if first.rtc else 'off'});"
            " the queue's merge mode cannot change mid-run"
        )


def _check_layout(
    action_names: list[str], state_dim: int, cameras: list[str], robot: RobotSpec, model: str
) -> None:
    if action_names and tuple(action_names) != robot.action_names:
        raise ContractViolation(
            f"model {model or '?'} outputs actions {list(action_names)} but this robot executes"
            f" {list(robot.action_names)} (names and order must match); serve a policy trained on this robot"
        )
    if state_dim and state_dim != robot.state_dim:
        raise ContractViolation(
            f"model {model or '?'} expects a state of {state_dim} values, this robot sends {robot.state_dim}"
        )
    missing = [c for c in cameras if c not in robot.cameras]
    if missing:
        raise ContractViolation(
            f"model {model or '?'} needs cameras {missing} that this robot does not have"
            f" (it has {list(robot.cameras)}); configure them or rename the cameras"
        )
