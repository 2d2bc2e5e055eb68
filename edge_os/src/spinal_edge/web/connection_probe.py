"""The Inference page's "test connection": the status and session handshake with a `spinal-server`, once.

Opens a short-lived Zenoh client session to the configured endpoint, asks `status`, compares the served policy
with this robot, opens a session (the server's own capability check) and closes it. Reports the capabilities or
the exact mismatch.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from spinal.protocol.codec import decode_session_ack, decode_status, encode_message
from spinal.protocol.constants import SCHEMA_VERSION
from spinal.protocol.errors import ProtocolError
from spinal.protocol.keys import ServiceKeys
from spinal.protocol.messages import SessionClose, SessionOpen, Status


@dataclass(frozen=True, slots=True)
class RobotDescription:
    """What this robot sends and expects, as the session open tells the server."""

    robot_type: str
    action_names: list[str]
    camera_names: list[str]
    fps: float
    task: str = ""


@dataclass(frozen=True, slots=True)
class ServerTarget:
    """Where the policy is served: Zenoh endpoint, the service's keys (model, revision, task), TLS files."""

    endpoint: str
    key_root: str
    model_id: str
    revision: str = "main"
    service: str = "default"  # the task key segment
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    timeout_s: float = 5.0


@dataclass(slots=True)
class ProbeResult:
    """ok: the server serves a policy this robot can run. `mismatch` lists every difference, in words."""

    ok: bool
    stage: str  # "connect", "status", "compare", "session", "done"
    message: str
    capabilities: dict[str, Any] = field(default_factory=dict)
    mismatch: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ConnectionProbe(Protocol):
    def probe(self, target: ServerTarget, robot: RobotDescription) -> ProbeResult: ...


def service_keys(target: ServerTarget) -> ServiceKeys:
    """`<key_root>/<model_id>/<revision>/<service>`, as the inference client and the server build it."""
    return ServiceKeys.for_service(target.model_id, target.revision, target.service, root=target.key_root)


def compare(status: Status, robot: RobotDescription) -> list[str]:
    """Every way the served policy and this robot disagree, each as one sentence with the fix."""
    out = []
    if not status.min_schema_version <= SCHEMA_VERSION <= status.max_schema_version:
        out.append(
            f"The server speaks schema {status.min_schema_version}..{status.max_schema_version}, this device "
            f"{SCHEMA_VERSION}; update the older side."
        )
    if status.state_dim and status.state_dim != len(robot.action_names):
        out.append(
            f"The policy expects a state of {status.state_dim} values, this robot has {len(robot.action_names)} "
            "joints; serve a policy trained on this arm."
        )
    if status.action_names and list(status.action_names) != list(robot.action_names):
        out.append(
            f"The policy's actions are {', '.join(status.action_names)}; this robot's joints are "
            f"{', '.join(robot.action_names)}; rename the joints or serve the matching policy."
        )
    missing = [c for c in status.expected_cameras if c not in robot.camera_names]
    if missing:
        out.append(
            f"The policy needs camera(s) {', '.join(missing)}; this device has "
            f"{', '.join(robot.camera_names) or 'none'}; add or rename cameras on the Cameras page."
        )
    if status.draining:
        out.append("The server is shutting down (draining); try again when it is back.")
    return out


def _capabilities(status: Status) -> dict[str, Any]:
    keys = (
        "model_repo", "model_revision", "policy_type", "action_names", "expected_cameras", "state_dim",
        "chunk_size", "trained_fps", "supports_rtc", "serving_mode", "warmed_up", "active_sessions",
        "max_sessions", "server_load", "min_schema_version", "max_schema_version", "model_fingerprint",
    )  # fmt: skip
    return {k: getattr(status, k) for k in keys}


class ZenohProbe:
    """The real probe over Zenoh (client mode, no scouting)."""

    def probe(self, target: ServerTarget, robot: RobotDescription) -> ProbeResult:
        import zenoh

        try:
            keys = service_keys(target)
        except ProtocolError as exc:
            return ProbeResult(False, "connect", f"The model id, revision or service is not usable: {exc}")
        try:
            session = zenoh.open(self._config(target))
        except Exception as exc:  # zenoh raises its own ZError for bad endpoints and TLS files
            return ProbeResult(False, "connect", f"Cannot open a connection to {target.endpoint}: {exc}")
        try:
            try:
                status = decode_status(self._query(session, keys.status, b"", target.timeout_s))
            except TimeoutError:
                return ProbeResult(
                    False,
                    "status",
                    f"No server answered at {target.endpoint} for {keys.prefix} within {target.timeout_s:g} s; "
                    "check the endpoint, the service name and that spinal-server runs.",
                )
            except (ProtocolError, RuntimeError) as exc:
                return ProbeResult(False, "status", f"The server's status reply was not understood: {exc}")
            caps = _capabilities(status)
            mismatch = compare(status, robot)
            if mismatch:
                return ProbeResult(
                    False, "compare", "The served policy does not fit this robot.", caps, mismatch
                )
            client = f"probe-{secrets.token_hex(4)}"
            request = SessionOpen(
                client_uuid=client,
                robot_type=robot.robot_type,
                fps=robot.fps,
                action_names=list(robot.action_names),
                camera_names=list(robot.camera_names),
                state_dim=len(robot.action_names),
                task=robot.task,
                tags={"purpose": "connection-test"},
            )
            try:
                ack = decode_session_ack(
                    self._query(session, keys.session, encode_message(request), target.timeout_s)
                )
            except (TimeoutError, ProtocolError, RuntimeError) as exc:
                return ProbeResult(False, "session", f"The session handshake failed: {exc}", caps)
            if not ack.accepted:
                return ProbeResult(False, "session", "The server refused the session.", caps, [ack.error])
            close = SessionClose(client_uuid=client, session_id=ack.session_id)
            # If the close is lost, the server's session GC ends the session anyway.
            with contextlib.suppress(TimeoutError, RuntimeError):
                self._query(session, keys.session, encode_message(close), target.timeout_s)
            caps["session_warnings"] = list(ack.warnings)
            return ProbeResult(
                True, "done", "Connected: the server serves a policy this robot can run.", caps
            )
        finally:
            session.close()

    @staticmethod
    def _config(target: ServerTarget) -> Any:
        import zenoh

        conf = zenoh.Config()
        conf.insert_json5("mode", '"client"')
        conf.insert_json5("connect/endpoints", json.dumps([target.endpoint]))
        conf.insert_json5("scouting/multicast/enabled", "false")
        tls = {}
        if target.tls_ca:
            tls["root_ca_certificate"] = target.tls_ca
        if target.tls_cert and target.tls_key:
            tls.update(
                connect_certificate=target.tls_cert, connect_private_key=target.tls_key, enable_mtls=True
            )
        if tls:
            conf.insert_json5("transport/link/tls", json.dumps(tls))
        return conf

    @staticmethod
    def _query(session: Any, key: str, payload: bytes, timeout_s: float) -> bytes:
        for reply in session.get(key, payload=payload, timeout=timeout_s):
            if reply.ok is not None:
                return reply.ok.payload.to_bytes()
            raise RuntimeError(
                f"the server answered {key} with an error: {reply.err.payload.to_bytes()!r:.200}"
            )
        raise TimeoutError(key)
