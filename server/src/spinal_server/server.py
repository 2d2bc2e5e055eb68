"""`PolicyServer`: one model served to many robots over Zenoh (status / session / reset queryables,
observation mailboxes, the inference worker, liveliness + idle GC, health/metrics, drain).

Zenoh callbacks only deposit (mailboxes, timestamps, a control queue); threads the server owns do the work.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from typing import Any

import zenoh
from spinal.protocol import (
    DEFAULT_LIMITS,
    MAX_SUPPORTED_SCHEMA_VERSION,
    MIN_SUPPORTED_SCHEMA_VERSION,
    SCHEMA_VERSION,
    DecodeLimits,
    Event,
    MsgHeader,
    MsgType,
    ProtocolError,
    ResetAck,
    SessionAck,
    SessionClose,
    Status,
    decode_reset,
    decode_session_close,
    decode_session_open,
    decode_telemetry,
    encode_message,
    encode_status,
    peek_op,
)

from spinal_server.audit import AuditTrail
from spinal_server.capture import CaptureRing
from spinal_server.errors import ServerError
from spinal_server.health import HealthServer
from spinal_server.ingest import Ingest
from spinal_server.logsupport import OnceLog
from spinal_server.manifest import Manifest
from spinal_server.metrics import ServerMetrics
from spinal_server.runtime import PolicyRuntime
from spinal_server.scheduler import RoundRobinScheduler, Scheduler, make_scheduler
from spinal_server.session import Session, SessionRegistry
from spinal_server.validation import ServiceCapabilities, resolve_serving_mode, validate_session_open
from spinal_server.worker import InferenceWorker, echo_header
from spinal_server.zenoh_config import ACTION_QOS, build_zenoh_config

log = logging.getLogger("spinal_server.server")

_HOUSEKEEPING_PERIOD_S = 0.2
_LIVELINESS_CHECK_TIMEOUT_S = 0.5
_CONTROL_QUEUE_SIZE = 1024


class PolicyServer:
    """Serve `manifest.model` under `manifest.service_keys()`; `start()`, then `drain()` (or use `with`)."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        runtime: PolicyRuntime | None = None,
        scheduler: Scheduler | None = None,
        limits: DecodeLimits = DEFAULT_LIMITS,
    ) -> None:
        self.manifest = manifest
        self.keys = manifest.service_keys()
        self.limits = limits
        self.metrics = ServerMetrics()
        self.registry = SessionRegistry()
        self.runtime = runtime
        self._scheduler = scheduler
        self.capabilities: ServiceCapabilities | None = None
        self.serving_mode = "shared"
        self.warmed_up = False
        self.health: HealthServer | None = None
        self.capture: CaptureRing | None = None
        self.audit: AuditTrail | None = None
        self.worker: InferenceWorker | None = None
        self._zenoh: Any = None
        self._declared: list[Any] = []
        self._token: Any = None
        self._obs_subscriber: Any = None
        # Bounded: a flood of queries is answered by the querier's own timeout, never by our memory.
        self._control: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_CONTROL_QUEUE_SIZE)
        self._open_lock = threading.Lock()
        self._draining = False
        self._stopped = threading.Event()
        self._finished = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started_mono = 0.0
        self._warn_once = OnceLog(log)
        self._ingest = Ingest(
            keys=self.keys,
            registry=self.registry,
            metrics=self.metrics,
            control=self._control,
            draining=lambda: self._draining,
            wake=self._wake_worker,
        )

    # ---- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> PolicyServer:
        """Load and warm the model, join Zenoh, declare everything, start the threads."""
        t0 = time.monotonic()
        m = self.manifest
        runtime = self.runtime or PolicyRuntime.from_manifest(m, limits=self.limits)
        self.runtime = runtime
        caps = runtime.capabilities
        self.serving_mode, max_sessions, note = resolve_serving_mode(
            m.serving_mode, caps.chunk_stateless, m.max_sessions
        )
        if note:
            log.warning(note)
        warm_ms = runtime.warmup(m.warmup_inferences)
        self.warmed_up = True
        scheduler = self._scheduler or make_scheduler(
            m.scheduler.kind, max_batch=m.scheduler.max_batch, max_wait_ms=m.scheduler.max_wait_ms
        )
        if scheduler.max_batch > 1 and not caps.batchable:
            log.warning(
                "scheduler 'batch' asked for, but this model takes one observation per forward: round robin"
            )
            scheduler = RoundRobinScheduler()
        spec = runtime.spec
        self.capabilities = ServiceCapabilities(
            model_repo=m.service_model_id(),
            model_revision=m.service_revision(),
            policy_type=spec.policy_type,
            action_names=list(spec.action_names),
            camera_shapes={name: [c.height, c.width] for name, c in spec.cameras.items()},
            state_dim=spec.state_dim,
            chunk_size=spec.chunk_size,
            trained_fps=m.trained_fps or spec.fps,
            supports_rtc=runtime.supports_rtc,
            rtc_execution_horizon=spec.rtc.execution_horizon if runtime.supports_rtc else 0,
            serving_mode=self.serving_mode,
            max_sessions=max_sessions,
            default_task=m.default_task,
            pin_task=m.pin_task,
            strict_fps=m.strict_fps,
            model_fingerprint=runtime.fingerprint,
            batchable=caps.batchable,
        )
        if m.debug.capture_dir is not None:
            self.capture = CaptureRing(
                m.debug.capture_dir, m.debug.capture_max, on_drop=self.metrics.capture_dropped.inc
            )
        self.audit = AuditTrail()
        self.worker = InferenceWorker(
            runtime=runtime,
            registry=self.registry,
            scheduler=scheduler,
            metrics=self.metrics,
            limits=self.limits,
            load=self.load,
            send_error=self._send_error,
            default_task=m.default_task,
            pin_task=m.pin_task,
            exclusive=self.serving_mode == "exclusive",
            capture=self.capture,
            audit=self.audit,
        )
        try:
            self._open_zenoh()
            self.worker.start()
            self._spawn(self._control_loop, "spinal-control")
            self._spawn(self._housekeeping_loop, "spinal-housekeeping")
            if m.health.port is not None:
                self.health = HealthServer(
                    m.health.host, m.health.port, health=self.health_report, metrics=self.metrics.render
                )
        except BaseException:
            self._shutdown(drain_events=False)
            raise
        self._started_mono = time.monotonic()
        log.info(
            "serving %s (%s, %s, scheduler %s) on %s; status at %s; warm-up %.1f ms/forward; ready in %.2f s",
            runtime.model_path.name,
            runtime.backend.name,
            caps.detail,
            scheduler.name,
            ", ".join(m.zenoh.listen or m.zenoh.connect),
            self.keys.status,
            warm_ms,
            time.monotonic() - t0,
        )
        return self

    def _open_zenoh(self) -> None:
        try:
            self._zenoh = zenoh.open(build_zenoh_config(self.manifest.zenoh))
        except zenoh.ZError as exc:
            raise ServerError(
                f"Zenoh could not start in {self.manifest.zenoh.mode} mode on "
                f"{self.manifest.zenoh.listen or self.manifest.zenoh.connect}: {exc} (is the port in use?)"
            ) from None
        z, k, ingest = self._zenoh, self.keys, self._ingest
        for key, kind in ((k.status, "status"), (k.session, "session"), (k.all_reset, "reset")):
            self._declared.append(z.declare_queryable(key, ingest.query_depositor(kind)))
        self._obs_subscriber = z.declare_subscriber(k.all_obs, ingest.on_observation)
        self._declared.append(z.declare_subscriber(k.all_telemetry, ingest.on_telemetry))
        self._declared.append(
            z.liveliness().declare_subscriber(k.all_alive, ingest.on_liveliness, history=True)
        )
        self._token = z.liveliness().declare_token(k.server_alive)

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def serve_forever(self) -> None:
        """Block until `drain()`/`stop()` (e.g. from a signal handler) has finished."""
        self._finished.wait()

    def drain(self, timeout: float = 10.0) -> None:
        """Graceful stop: liveliness token first, finish the forward in flight, tell every client, close."""
        if self._draining:
            self._finished.wait(timeout)
            return
        self._draining = True
        self.metrics.draining.set(1)
        log.info("draining: %d sessions", len(self.registry))
        self._shutdown(drain_events=True, timeout=timeout)

    stop = drain

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.drain()

    def _shutdown(self, *, drain_events: bool, timeout: float = 10.0) -> None:
        self._draining = True
        _undeclare(self._token)  # clients see the drop first and ride their buffers
        self._token = None
        _undeclare(self._obs_subscriber)  # nothing new reaches a mailbox
        self._obs_subscriber = None
        if self.worker is not None and self.worker.alive and not self.worker.stop(timeout):
            log.warning("inference worker did not finish within %.1f s", timeout)
        self._close_all(drain_events)
        self._stopped.set()
        with contextlib.suppress(queue.Full):
            self._control.put(("stop", None), timeout=1.0)
        for thread in self._threads:
            thread.join(timeout)
        self._close_all(drain_events)  # a session opened while the control thread was finishing a query
        for declared in self._declared:
            _undeclare(declared)
        self._declared.clear()
        if self.capture is not None:
            self.capture.close()
        if self.audit is not None:
            self.audit.close()
        if self._zenoh is not None:
            with contextlib.suppress(zenoh.ZError):
                self._zenoh.close()
            self._zenoh = None
        if self.health is not None:
            self.health.close()
            self.health = None
        log.info("stopped")
        self._finished.set()

    def _close_all(self, drain_events: bool) -> None:
        for session in self.registry.snapshot():
            if session.mailbox.take() is not None:
                self.metrics.dropped.labels(reason="drain").inc()
            if drain_events:
                self._send_event(session, "drain", "server is shutting down; reconnect to another replica")
            self._close_session(session, "drain")

    # ---- status ----------------------------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._draining

    def load(self) -> float:
        caps = self.capabilities
        return len(self.registry) / caps.max_sessions if caps else 0.0

    def status_message(self) -> Status:
        caps = self.capabilities
        assert caps is not None, "status before start()"
        return Status(
            **caps.advertised(),
            warmed_up=self.warmed_up,
            schema_version=SCHEMA_VERSION,
            min_schema_version=MIN_SUPPORTED_SCHEMA_VERSION,
            max_schema_version=MAX_SUPPORTED_SCHEMA_VERSION,
            active_sessions=len(self.registry),
            max_sessions=caps.max_sessions,
            server_load=self.load(),
            default_task=caps.default_task,
            pin_task=caps.pin_task,
            batchable=caps.batchable,
            draining=self._draining,
            camera_shapes=caps.camera_shapes,
        )

    def health_report(self) -> tuple[bool, dict[str, Any]]:
        worker_ok = self.worker is not None and self.worker.alive
        status = "draining" if self._draining else ("ok" if worker_ok else "worker dead")
        detail = {
            "status": status,
            "active_sessions": len(self.registry),
            "max_sessions": self.capabilities.max_sessions if self.capabilities else 0,
            "server_load": self.load(),
            "warmed_up": self.warmed_up,
            "model_fingerprint": self.runtime.fingerprint if self.runtime else "",
            "uptime_s": round(time.monotonic() - self._started_mono, 3) if self._started_mono else 0.0,
        }
        return status == "ok", detail

    def _wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake.set()

    # ---- control thread ---------------------------------------------------------------------------------

    def _control_loop(self) -> None:
        while True:
            kind, query = self._control.get()
            if kind == "stop":
                return
            try:
                self._handle_query(kind, query)
            except Exception:  # one bad query must never stop the control plane
                log.exception("%s query failed", kind)
            finally:
                with contextlib.suppress(Exception):  # already finalized
                    query.drop()

    def _handle_query(self, kind: str, query: zenoh.Query) -> None:
        body = query.payload.to_bytes() if query.payload is not None else b""
        if kind == "status":
            query.reply(query.key_expr, encode_status(self.status_message()))
        elif kind == "session":
            query.reply(query.key_expr, encode_message(self._session_query(body)))
        elif kind == "reset":
            client = self._ingest.client_of(query.key_expr, "reset")
            reply = (
                ResetAck(ok=False, error="reset key has no client chunk")
                if client is None
                else self._reset(client, body)
            )
            query.reply(query.key_expr, encode_message(reply))

    def _session_query(self, body: bytes) -> SessionAck | ResetAck:
        try:
            op = peek_op(body, self.limits)
            if op == "close":
                return self.close_session(decode_session_close(body, self.limits))
            return self.open_session(decode_session_open(body, self.limits))
        except ProtocolError as exc:
            self.metrics.sessions_refused.inc()
            return SessionAck(
                accepted=False, error=f"session request is malformed: {exc}", server_load=self.load()
            )

    def open_session(self, msg) -> SessionAck:
        """Validate and open (or re-open) a session; declares the client's action publisher."""
        caps = self.capabilities
        assert caps is not None and self.runtime is not None
        with self._open_lock:
            existing = self.registry.get(msg.client_uuid)
            others = len(self.registry) - (1 if existing is not None else 0)
            decision = validate_session_open(msg, caps, active_others=others, draining=self._draining)
            if not decision.accepted:
                if caps.serving_mode == "exclusive" and decision.error.startswith("server full"):
                    decision.error = (
                        "server full: it serves one robot exclusively (this policy keeps state between chunks); "
                        "try another replica"
                    )
                self.metrics.sessions_refused.inc()
                log.info("session refused for %r: %s", msg.client_uuid, decision.error)
                return SessionAck(
                    accepted=False,
                    error=decision.error,
                    model_repo=caps.model_repo,
                    model_revision=caps.model_revision,
                    server_load=self.load(),
                    model_fingerprint=caps.model_fingerprint,
                )
            publisher = self._zenoh.declare_publisher(self.keys.action(decision.client_uuid), **ACTION_QOS)
            session = Session(
                session_id=uuid.uuid4().hex,
                client_uuid=decision.client_uuid,
                task=decision.task,
                robot_type=msg.robot_type,
                rtc_enabled=decision.rtc_enabled,
                processor=self.runtime.new_session_state(),
                publish=lambda body, attachment: publisher.put(body, attachment=attachment),
                undeclare=publisher.undeclare,
                tags=dict(msg.tags),
            )
            old = self.registry.add(session)
        if old is not None:
            old.close()
            self.metrics.sessions_closed.labels(reason="replaced").inc()
        self.metrics.sessions_opened.inc()
        self._update_gauges()
        log.info(
            "session %s opened for %r (robot %r, rtc %s)%s",
            session.session_id,
            session.client_uuid,
            msg.robot_type,
            session.rtc_enabled,
            f"; warnings: {'; '.join(decision.warnings)}" if decision.warnings else "",
        )
        return SessionAck(
            **caps.advertised(),
            accepted=True,
            warnings=decision.warnings,
            session_id=session.session_id,
            warmed_up=self.warmed_up,
            schema_version=SCHEMA_VERSION,
            server_load=self.load(),
            rtc_downgraded=decision.rtc_downgraded,
        )

    def close_session(self, msg: SessionClose) -> ResetAck:
        session = self.registry.get(msg.client_uuid)
        if session is None:
            return ResetAck(ok=False, error=f"no open session for client {msg.client_uuid!r:.60}")
        if msg.session_id and msg.session_id != session.session_id:
            return ResetAck(ok=False, error="session_id does not match the open session; nothing closed")
        self._close_session(session, "client")
        return ResetAck(ok=True)

    def _reset(self, client: str, body: bytes) -> ResetAck:
        session = self.registry.get(client)
        if session is None:
            return ResetAck(ok=False, error=f"no open session for client {client!r}; open one first")
        try:
            msg = decode_reset(body, self.limits)
        except ProtocolError as exc:
            return ResetAck(ok=False, error=f"reset request is malformed: {exc}")
        if msg.client_uuid and msg.client_uuid != client:
            return ResetAck(ok=False, error="reset body names another client than its key")
        assert self.worker is not None and self.runtime is not None
        session.touch()
        session.mailbox.clear()
        with self.worker.model_lock:
            self.runtime.reset_session(session.processor, msg.episode_id)
            if self.serving_mode == "exclusive":
                self.runtime.backend.reset()
        session.episode_id = msg.episode_id
        return ResetAck(ok=True)

    def _close_session(self, session: Session, reason: str) -> None:
        if self.registry.remove(session.client_uuid, expected=session) is None and session.closed:
            return
        session.close()
        self.metrics.sessions_closed.labels(reason=reason).inc()
        self._update_gauges()
        log.info("session %s of %r closed (%s)", session.session_id, session.client_uuid, reason)

    # ---- events -----------------------------------------------------------------------------------------

    def _send_error(self, session: Session, header: MsgHeader, message: str) -> None:
        event = Event(kind="error", detail=message[:1000], session_id=session.session_id)
        reply = echo_header(header, MsgType.EVENT)
        session.publish(encode_message(event), reply.pack())

    def _send_event(self, session: Session, kind: str, detail: str) -> None:
        if session.closed:
            return
        header = MsgHeader(msg_type=MsgType.EVENT, episode_id=max(0, session.episode_id))
        try:
            session.publish(
                encode_message(Event(kind=kind, detail=detail, session_id=session.session_id)), header.pack()
            )
        except Exception:  # a client that is gone learns from its liveliness watch instead
            log.debug("%s event to %s not sent", kind, session.client_uuid, exc_info=True)

    # ---- housekeeping -----------------------------------------------------------------------------------

    def _housekeeping_loop(self) -> None:
        while not self._stopped.wait(_HOUSEKEEPING_PERIOD_S):
            try:
                self.housekeeping(time.monotonic())
            except Exception:  # housekeeping must keep running
                log.exception("housekeeping failed")

    def housekeeping(self, now: float) -> None:
        """Idle GC, liveliness GC (with the double check), telemetry bookkeeping, gauges."""
        m = self.manifest
        for session in self.registry.snapshot():
            raw = session.extras.pop("telemetry", None)
            if raw is not None:
                try:
                    session.paused = decode_telemetry(raw, self.limits).paused
                except ProtocolError as exc:
                    self.metrics.errors.labels(kind="telemetry").inc()
                    self._warn_once.warn(
                        ("telemetry", session.client_uuid),
                        "telemetry from %r is malformed: %s",
                        session.client_uuid,
                        exc,
                    )
            if now - session.last_seen_mono > m.session_idle_timeout_s:
                self._close_session(session, "idle")
                continue
            dropped = session.token_dropped_mono
            if dropped is not None and now - dropped >= m.liveliness_grace_s:
                if self._token_present(session.client_uuid):
                    # A late DELETE from an earlier incarnation of this client: the token is back.
                    session.token_dropped_mono = None
                elif session.token_dropped_mono is not None:
                    self._close_session(session, "liveliness")
        self._update_gauges()

    def _token_present(self, client: str) -> bool:
        if self._zenoh is None:
            return False
        try:
            replies = self._zenoh.liveliness().get(
                self.keys.alive(client), timeout=_LIVELINESS_CHECK_TIMEOUT_S
            )
            return any(reply.ok is not None for reply in replies)
        except zenoh.ZError:
            return False

    def _update_gauges(self) -> None:
        self.metrics.active_sessions.set(len(self.registry))
        self.metrics.server_load.set(self.load())


def _undeclare(entity: Any) -> None:
    if entity is None:
        return
    with contextlib.suppress(Exception):  # already undeclared or the session is gone
        entity.undeclare()
