"""The remote chunk source: a policy server reached over Zenoh (status, session, obs -> chunk, reset).

Used by `RemoteEngine`'s worker thread. Zenoh callbacks only deposit and wake; decoding happens here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zenoh
from spinal.protocol import (
    DEFAULT_LIMITS,
    MAX_SUPPORTED_SCHEMA_VERSION,
    MIN_SUPPORTED_SCHEMA_VERSION,
    DecodeLimits,
    MsgHeader,
    MsgType,
    ProtocolError,
    Reset,
    SessionClose,
    SessionOpen,
    Telemetry,
    decode_action_chunk,
    decode_event,
    decode_reset_ack,
    decode_session_ack,
    decode_status,
    encode_message,
    encode_observation,
)

from spinal_edge.inference.config import InferenceConfig
from spinal_edge.inference.errors import LinkLost, RequestFailed, ServerUnavailable
from spinal_edge.inference.handshake import check_status, session_info_from_ack
from spinal_edge.inference.source import (
    ChunkReply,
    ChunkRequest,
    LinkStatus,
    RequestCancelled,
    SessionInfo,
    SourceCounters,
)
from spinal_edge.inference.types import RobotSpec
from spinal_edge.inference.zenoh_link import OBSERVATION_QOS, TELEMETRY_QOS, zenoh_config

log = logging.getLogger("spinal_edge.inference.zenoh")

_INBOX = 16  # messages on our action key waiting for the worker; one request is in flight, so plenty
_WAIT_SLICE_S = 0.05  # a waiting request re-checks cancellation at least this often
_CLOSE_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class _ServerError:
    detail: str


class ZenohChunkSource:
    """One Zenoh session per engine: action subscriber, obs/telemetry publishers, the client's liveliness
    token and a watch on the server's. The session stays open across re-handshakes (Zenoh re-dials)."""

    def __init__(self, config: InferenceConfig, *, limits: DecodeLimits = DEFAULT_LIMITS) -> None:
        self._cfg = config
        self._keys = config.service_keys()
        self._uuid = config.client_uuid
        self._limits = limits
        self._lock = threading.Lock()  # guards opening / closing the Zenoh session
        self._cond = threading.Condition()
        self._inbox: deque[tuple[bytes | None, bytes]] = deque(maxlen=_INBOX)
        self._z: Any = None
        self._entities: list[Any] = []
        self._obs_pub: Any = None
        self._telemetry_pub: Any = None
        self._closed = False
        self._server_present = False
        self._draining = False
        self._detail = ""
        self._session_id = ""
        self._epoch = 0
        self._episode = 0
        self._wakeup: Callable[[], None] = lambda: None
        self._c = SourceCounters()

    # ---- Zenoh plumbing --------------------------------------------------------------------------

    def _ensure_open(self) -> Any:
        with self._lock:
            if self._closed:
                raise ServerUnavailable("the inference link is closed")
            if self._z is not None:
                return self._z
            try:
                z = zenoh.open(zenoh_config(self._cfg))
            except zenoh.ZError as exc:
                raise ServerUnavailable(
                    f"cannot reach {', '.join(self._cfg.endpoints)} ({exc}); is the router/server up?"
                ) from None
            try:
                self._entities = [
                    z.declare_subscriber(self._keys.action(self._uuid), self._on_action),
                    z.liveliness().declare_subscriber(
                        self._keys.server_alive, self._on_server_alive, history=True
                    ),
                    z.liveliness().declare_token(self._keys.alive(self._uuid)),
                ]
                self._obs_pub = z.declare_publisher(self._keys.obs(self._uuid), **OBSERVATION_QOS)
                self._telemetry_pub = z.declare_publisher(self._keys.telemetry(self._uuid), **TELEMETRY_QOS)
                self._entities += [self._obs_pub, self._telemetry_pub]
            except zenoh.ZError as exc:
                _close_quietly(z, self._entities)
                self._entities = []
                raise ServerUnavailable(f"declaring the client's keys failed: {exc}") from None
            self._z = z
            return z

    def _on_action(self, sample: zenoh.Sample) -> None:
        # Deposit only: Zenoh's callback thread must never block or decode.
        attachment = sample.attachment
        item = (attachment.to_bytes() if attachment is not None else None, sample.payload.to_bytes())
        with self._cond:
            self._inbox.append(item)
            self._cond.notify_all()

    def _on_server_alive(self, sample: zenoh.Sample) -> None:
        present = sample.kind == zenoh.SampleKind.PUT
        with self._cond:
            if self._server_present and not present:
                self._c.liveliness_losses += 1
                self._detail = "server liveliness token dropped"
            self._server_present = present
            if present:
                self._detail = ""
            self._cond.notify_all()
        self._wakeup()

    def _query(self, key: str, payload: bytes, timeout_s: float, what: str) -> bytes:
        z = self._ensure_open()
        try:
            replies = z.get(key, payload=payload, timeout=timeout_s)
            for reply in replies:
                if reply.ok is not None:
                    return reply.ok.payload.to_bytes()
                err = reply.err.payload.to_bytes() if reply.err is not None else b""
                raise ServerUnavailable(f"{what} query answered with an error: {err[:200]!r}")
        except zenoh.ZError as exc:
            raise ServerUnavailable(f"{what} query failed: {exc}") from None
        raise ServerUnavailable(
            f"no policy server answered the {what} query at {key} within {timeout_s:.1f} s"
            f" via {', '.join(self._cfg.endpoints)}; check that it serves this model/revision/task"
        )

    # ---- ChunkSource -----------------------------------------------------------------------------

    def open_session(self, epoch: int, robot: RobotSpec) -> SessionInfo:
        cfg = self._cfg
        try:
            status = decode_status(
                self._query(self._keys.status, b"", cfg.handshake_timeout_s, "status"), self._limits
            )
        except ProtocolError as exc:
            self._c.bad_messages += 1
            raise ServerUnavailable(f"server sent a malformed status: {exc}") from None
        check_status(status, robot)
        request = SessionOpen(
            client_uuid=self._uuid,
            robot_type=robot.robot_type,
            fps=robot.fps,
            action_names=list(robot.action_names),
            camera_names=list(robot.cameras),
            state_dim=robot.state_dim,
            rtc_enabled=cfg.rtc.enabled,
            task=cfg.task,
            tags=dict(cfg.tags),
        )
        body = self._query(self._keys.session, encode_message(request), cfg.handshake_timeout_s, "session")
        try:
            ack = decode_session_ack(body, self._limits)
        except ProtocolError as exc:
            self._c.bad_messages += 1
            raise ServerUnavailable(f"server sent a malformed session ack: {exc}") from None
        info = session_info_from_ack(ack, cfg, robot)
        with self._cond:
            self._inbox.clear()  # anything still queued belongs to an older session
            self._session_id = info.session_id
            self._epoch = epoch
            self._draining = False
            self._server_present = True  # it just answered; a later DELETE will say otherwise
            self._detail = ""
        return info

    def close_session(self) -> None:
        session_id, self._session_id = self._session_id, ""
        if not session_id or self._z is None:
            return
        msg = SessionClose(client_uuid=self._uuid, session_id=session_id)
        try:
            self._query(self._keys.session, encode_message(msg), _CLOSE_TIMEOUT_S, "session close")
        except ServerUnavailable as exc:
            log.debug("session close not acknowledged: %s", exc)

    def request(self, request: ChunkRequest, timeout_s: float, cancelled: Callable[[], bool]) -> ChunkReply:
        self._ensure_open()
        try:
            body = encode_observation(request.observation)
        except ProtocolError as exc:
            raise RequestFailed(f"observation could not be encoded: {exc}") from None
        header = MsgHeader(
            msg_type=MsgType.OBS,
            seq_id=request.seq_id,
            episode_id=request.episode_id,
            client_mono_ns=time.monotonic_ns(),
            session_epoch=request.epoch,
        ).pack()
        self._episode = request.episode_id
        deadline = time.monotonic() + timeout_s
        try:
            self._obs_pub.put(body, attachment=header)
        except zenoh.ZError as exc:
            raise RequestFailed(f"publishing the observation failed: {exc}") from None
        while True:
            with self._cond:
                if not self._inbox:
                    if cancelled():
                        raise RequestCancelled(f"request {request.seq_id} withdrawn")
                    if not self._server_present:
                        raise LinkLost(self._detail or "server liveliness token dropped while waiting")
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise RequestFailed(f"no chunk for request {request.seq_id} within {timeout_s:.2f} s")
                    self._cond.wait(min(remaining, _WAIT_SLICE_S))
                items = list(self._inbox)
                self._inbox.clear()
            for hdr, payload in items:
                answer = self._match(hdr, payload, request)
                if isinstance(answer, ChunkReply):
                    return answer
                if isinstance(answer, _ServerError):
                    raise RequestFailed(f"server could not answer request {request.seq_id}: {answer.detail}")

    def _match(
        self, hdr: bytes | None, payload: bytes, request: ChunkRequest
    ) -> ChunkReply | _ServerError | None:
        try:
            header = MsgHeader.unpack(hdr)
        except ProtocolError as exc:
            self._bad(f"message on the action key dropped: {exc}")
            return None
        if not MIN_SUPPORTED_SCHEMA_VERSION <= header.schema_version <= MAX_SUPPORTED_SCHEMA_VERSION:
            self._bad(f"message with schema_version {header.schema_version} dropped")
            return None
        ours = request is not None and (header.session_epoch, header.episode_id, header.seq_id) == (
            request.epoch,
            request.episode_id,
            request.seq_id,
        )
        if header.msg_type == MsgType.EVENT:
            return self._event(header, payload, ours)
        if header.msg_type != MsgType.CHUNK:
            self._bad(f"message type {header.msg_type} on the action key dropped")
            return None
        if not ours or request is None:
            self._c.stale_chunks += 1
            return None
        try:
            chunk = decode_action_chunk(payload, self._limits)
        except ProtocolError as exc:
            self._bad(f"chunk for request {request.seq_id} dropped: {exc}")
            return None
        if (chunk.seq_id_echo and chunk.seq_id_echo != request.seq_id) or (
            chunk.session_id and self._session_id and chunk.session_id != self._session_id
        ):
            self._c.stale_chunks += 1
            return None
        if chunk.chunk_robot is None:
            self._bad(f"chunk for request {request.seq_id} has no chunk_robot")
            return None
        return ChunkReply(
            chunk_model=chunk.chunk_model,  # type: ignore[arg-type]  # None is checked by the engine
            chunk_robot=chunk.chunk_robot,
            session_id=chunk.session_id,
            inference_ms=chunk.inference_ms,
            queue_wait_ms=chunk.queue_wait_ms,
            superseded_seqs=chunk.superseded_seqs,
            server_load=chunk.server_load,
        )

    def _event(self, header: MsgHeader, payload: bytes, ours: bool) -> _ServerError | None:
        try:
            event = decode_event(payload, self._limits)
        except ProtocolError as exc:
            self._bad(f"event dropped: {exc}")
            return None
        self._c.events += 1
        if event.kind == "drain":
            self._c.drain_notices += 1
            with self._cond:
                self._draining = True
                self._detail = event.detail or "server draining"
            log.warning("policy server is draining: %s", event.detail)
            self._wakeup()
            return None
        if event.kind == "error" and ours:
            return _ServerError(event.detail or "unspecified server error")
        log.info("server event %r: %s", event.kind, event.detail[:200])
        return None

    def _bad(self, why: str) -> None:
        self._c.bad_messages += 1
        if self._c.bad_messages <= 10 or self._c.bad_messages % 1000 == 0:
            log.warning("%s (bad messages so far: %d)", why, self._c.bad_messages)

    def reset_episode(self, episode_id: int, timeout_s: float) -> bool:
        msg = Reset(client_uuid=self._uuid, episode_id=episode_id)
        try:
            body = self._query(self._keys.reset(self._uuid), encode_message(msg), timeout_s, "reset")
            ack = decode_reset_ack(body, self._limits)
        except ServerUnavailable as exc:
            log.warning("reset to episode %d not acknowledged: %s", episode_id, exc)
            return False
        except ProtocolError as exc:
            self._bad(f"reset ack dropped: {exc}")
            return False
        if not ack.ok:
            log.warning("server refused the reset to episode %d: %s", episode_id, ack.error)
        return ack.ok

    def heartbeat(self, telemetry: Telemetry) -> None:
        if self._telemetry_pub is None:
            return
        header = MsgHeader(msg_type=MsgType.TELEMETRY, episode_id=self._episode, session_epoch=self._epoch)
        try:
            self._telemetry_pub.put(encode_message(telemetry), attachment=header.pack())
            self._c.heartbeats += 1
        except zenoh.ZError as exc:
            log.debug("telemetry not sent: %s", exc)

    def link_status(self) -> LinkStatus:
        # Between requests nothing reads the inbox: events (a drain) are handled here, and a chunk that
        # turns up with no request waiting answers a withdrawn one (counted as stale).
        with self._cond:
            items = list(self._inbox)
            self._inbox.clear()
        for hdr, payload in items:
            self._match(hdr, payload, None)
        with self._cond:
            return LinkStatus(self._server_present, self._draining, self._detail)

    def counters(self) -> SourceCounters:
        return self._c

    def set_wakeup(self, wakeup: Callable[[], None]) -> None:
        self._wakeup = wakeup

    def interrupt(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            z, self._z = self._z, None
            entities, self._entities = self._entities, []
        if z is not None:
            _close_quietly(z, entities)


def _close_quietly(z: Any, entities: list[Any]) -> None:
    for entity in reversed(entities):
        try:
            entity.undeclare()
        except Exception:  # already gone with the session
            log.debug("undeclare failed", exc_info=True)
    try:
        z.close()
    except Exception:
        log.debug("zenoh close failed", exc_info=True)
