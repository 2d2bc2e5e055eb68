"""Session-open validation and serving-mode resolution: fail fast, fail loud, before a robot moves.

Used by the server's `session` queryable; pure functions over messages, testable without a network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from spinal.protocol import (
    MAX_SUPPORTED_SCHEMA_VERSION,
    MIN_SUPPORTED_SCHEMA_VERSION,
    KeyExpressionError,
    SessionOpen,
    sanitize_key_segment,
)

from spinal_server.errors import ManifestError

_FPS_TOLERANCE = 1e-6
_ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class ServiceCapabilities:
    """What this server offers, as session validation and `status` see it."""

    model_repo: str
    model_revision: str
    policy_type: str
    action_names: list[str]
    camera_shapes: dict[str, list[int]]
    state_dim: int
    chunk_size: int
    trained_fps: float
    supports_rtc: bool
    rtc_execution_horizon: int
    serving_mode: str
    max_sessions: int
    default_task: str
    pin_task: bool
    strict_fps: bool
    model_fingerprint: str
    batchable: bool

    @property
    def expected_cameras(self) -> list[str]:
        return list(self.camera_shapes)

    def advertised(self) -> dict[str, object]:
        """The capability fields `Status` and an accepting `SessionAck` both carry."""
        return {
            "model_repo": self.model_repo,
            "model_revision": self.model_revision,
            "policy_type": self.policy_type,
            "action_names": list(self.action_names),
            "expected_cameras": self.expected_cameras,
            "state_dim": self.state_dim,
            "chunk_size": self.chunk_size,
            "trained_fps": self.trained_fps,
            "supports_rtc": self.supports_rtc,
            "rtc_execution_horizon": self.rtc_execution_horizon,
            "serving_mode": self.serving_mode,
            "model_fingerprint": self.model_fingerprint,
        }


@dataclass
class OpenDecision:
    """Accepted (with warnings, effective RTC and task) or refused with one sentence saying why."""

    accepted: bool
    error: str = ""
    client_uuid: str = ""
    warnings: list[str] = field(default_factory=list)
    rtc_enabled: bool = False
    rtc_downgraded: bool = False
    task: str = ""


def validate_session_open(
    msg: SessionOpen, caps: ServiceCapabilities, *, active_others: int, draining: bool = False
) -> OpenDecision:
    """Check a `SessionOpen` against the served policy; the first hard failure wins.

    `active_others` counts open sessions of *other* clients, so a re-handshake never counts against capacity.
    """

    def refuse(error: str) -> OpenDecision:
        return OpenDecision(False, error)

    if draining:
        return refuse("server is draining (shutting down); connect to another replica")
    if not MIN_SUPPORTED_SCHEMA_VERSION <= msg.schema_version <= MAX_SUPPORTED_SCHEMA_VERSION:
        return refuse(
            f"schema_version {msg.schema_version} is not supported; this server speaks "
            f"{MIN_SUPPORTED_SCHEMA_VERSION}..{MAX_SUPPORTED_SCHEMA_VERSION}"
        )
    try:
        client_uuid = sanitize_key_segment(msg.client_uuid)
    except KeyExpressionError as exc:
        return refuse(f"client_uuid is not usable as a key chunk: {exc}")
    if client_uuid != msg.client_uuid:
        return refuse(f"client_uuid {msg.client_uuid!r:.60} must be key-safe; use {client_uuid!r}")
    if active_others >= caps.max_sessions:
        return refuse(
            f"server full: {active_others}/{caps.max_sessions} sessions active; try another replica"
        )
    if caps.action_names and list(msg.action_names) != caps.action_names:
        return refuse(_action_mismatch(msg.action_names, caps.action_names))
    if caps.state_dim and msg.state_dim and msg.state_dim != caps.state_dim:
        return refuse(f"state_dim {msg.state_dim} does not match the policy's {caps.state_dim}")
    missing = [c for c in caps.expected_cameras if c not in msg.camera_names]
    if missing:
        return refuse(
            f"cameras {missing} are missing; the policy needs {caps.expected_cameras} "
            f"(client sends {list(msg.camera_names)})"
        )
    task = msg.task or caps.default_task
    if caps.pin_task and msg.task and msg.task != caps.default_task:
        return refuse(f"task {msg.task!r:.80} is refused: this server is pinned to {caps.default_task!r:.80}")
    warnings: list[str] = []
    if msg.fps and caps.trained_fps and not math.isclose(msg.fps, caps.trained_fps, abs_tol=_FPS_TOLERANCE):
        text = f"client fps {msg.fps:g} differs from the policy's trained fps {caps.trained_fps:g}"
        if caps.strict_fps:
            return refuse(text + " and this server has strict_fps set")
        warnings.append(text)
    if msg.policy_type and caps.policy_type and msg.policy_type != caps.policy_type:
        warnings.append(f"client expects policy_type {msg.policy_type!r}, server serves {caps.policy_type!r}")
    extra = sorted(set(msg.camera_names) - set(caps.expected_cameras))
    if extra:
        warnings.append(f"cameras {extra} are not used by the policy; stop sending them to save bandwidth")
    warnings.extend(_aspect_warnings(msg.camera_shapes, caps.camera_shapes))
    rtc = bool(msg.rtc_enabled and caps.supports_rtc)
    downgraded = bool(msg.rtc_enabled and not caps.supports_rtc)
    if downgraded:
        warnings.append("RTC requested but this policy does not support it; downgraded to chunk-append")
    return OpenDecision(True, "", client_uuid, warnings, rtc, downgraded, task)


def resolve_serving_mode(requested: str, chunk_stateless: bool, max_sessions: int) -> tuple[str, int, str]:
    """(mode, max_sessions, note): `auto` follows the model; `shared` on a chunk-stateful model is refused."""
    if requested == "shared" and not chunk_stateless:
        raise ManifestError(
            "serving_mode 'shared' is unsafe for this model: it keeps state between chunks; "
            "use serving_mode: exclusive (or auto)"
        )
    mode = requested if requested != "auto" else ("shared" if chunk_stateless else "exclusive")
    if mode == "exclusive" and max_sessions != 1:
        return mode, 1, f"serving_mode exclusive serves one session; max_sessions {max_sessions} -> 1"
    return mode, max_sessions, ""


def _action_mismatch(client: list[str], server: list[str]) -> str:
    if sorted(client) == sorted(server):
        return f"action names are in a different order: client {list(client)}, policy {server}; reorder them"
    return f"action names {list(client)} do not match the policy's {server}"


def _aspect_warnings(client: dict[str, list[int]], model: dict[str, list[int]]) -> list[str]:
    out = []
    for name, shape in client.items():
        want = model.get(name)
        if not want or len(shape) < 2 or len(want) < 2 or not shape[0] or not shape[1]:
            continue
        ours, theirs = want[1] / want[0], shape[1] / shape[0]
        if abs(ours - theirs) / ours > _ASPECT_TOLERANCE:
            out.append(
                f"camera {name!r} is {shape[1]}x{shape[0]} but the policy saw {want[1]}x{want[0]}; "
                "its aspect ratio differs, frames will be stretched"
            )
    return out
