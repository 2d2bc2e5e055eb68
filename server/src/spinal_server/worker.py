"""The inference worker: the one thread that owns the model, serving ready sessions as the scheduler says.

Decode, canonical preprocess, (batched) forward, postprocess, publish the chunk, audit, capture; errors are
counted and answered with an error event, never allowed to kill the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from spinal.protocol import (
    ActionChunk,
    DecodeLimits,
    MsgHeader,
    MsgType,
    Observation,
    ProtocolError,
    decode_observation,
    encode_action_chunk,
)

from spinal_server.audit import AuditRecord, AuditTrail
from spinal_server.capture import CaptureRecord, CaptureRing
from spinal_server.errors import InferenceError, ObservationError
from spinal_server.metrics import ServerMetrics
from spinal_server.processing import ModelInput
from spinal_server.runtime import PolicyRuntime
from spinal_server.scheduler import Scheduler
from spinal_server.session import MailboxItem, Session, SessionRegistry

log = logging.getLogger("spinal_server.worker")


def echo_header(request: MsgHeader, msg_type: MsgType) -> MsgHeader:
    """The header of an answer: the request's seq, episode, client clock and epoch, echoed untouched."""
    return MsgHeader(
        msg_type=msg_type,
        seq_id=request.seq_id,
        episode_id=request.episode_id,
        client_mono_ns=request.client_mono_ns,
        session_epoch=request.session_epoch,
    )


@dataclass
class _Job:
    """One taken observation on its way through the worker."""

    session: Session
    item: MailboxItem
    started: float
    obs: Observation | None = None
    prepared: ModelInput | None = None
    task: str = ""
    prep_ms: float = 0.0


class InferenceWorker:
    """Serves sessions until `stop()`; a forward in progress always completes and is published."""

    def __init__(
        self,
        *,
        runtime: PolicyRuntime,
        registry: SessionRegistry,
        scheduler: Scheduler,
        metrics: ServerMetrics,
        limits: DecodeLimits,
        load: Callable[[], float],
        send_error: Callable[[Session, MsgHeader, str], None],
        default_task: str,
        pin_task: bool,
        exclusive: bool,
        capture: CaptureRing | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        self.runtime = runtime
        self.registry = registry
        self.scheduler = scheduler
        self.metrics = metrics
        self.limits = limits
        self.load = load
        self.send_error = send_error
        self.default_task = default_task
        self.pin_task = pin_task
        self.exclusive = exclusive
        self.capture = capture
        self.audit = audit
        self.wake = threading.Event()
        self.model_lock = threading.Lock()  # serializes forwards against resets from the control thread
        self._stopping = threading.Event()
        self._busy = threading.Event()
        self.forwards = 0
        self._thread = threading.Thread(target=self._run, name="spinal-inference", daemon=True)

    # ---- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Finish the group being served (if any), then exit; False when it did not stop in time."""
        self._stopping.set()
        self.wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def busy(self) -> bool:
        """True while a group of observations is being served."""
        return self._busy.is_set()

    # ---- the loop -------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                ready = self.registry.ready()
                if not ready:
                    self.wake.wait(0.05)
                    self.wake.clear()
                    continue
                selection = self.scheduler.select(ready, active=len(self.registry), now=time.monotonic())
                if not selection.sessions:
                    self.wake.wait(max(selection.wait_s, 0.0005))
                    self.wake.clear()
                    continue
                self._busy.set()
                try:
                    self.serve(selection.sessions)
                finally:
                    self._busy.clear()
            except Exception:  # the worker must survive anything a request can do
                log.exception("inference worker cycle failed; continuing")
                time.sleep(0.01)

    def serve(self, sessions: list[Session]) -> None:
        """Take each session's observation, run them in as few forwards as their input shapes allow, publish."""
        now = time.monotonic()
        jobs = []
        for session in sessions:
            item = session.mailbox.take()
            if item is not None and not session.closed:
                jobs.append(_Job(session, item, now))
        prepared = [job for job in jobs if self._prepare(job)]
        groups: dict[tuple, list[_Job]] = {}
        for job in prepared:
            groups.setdefault(job.prepared.shape_key, []).append(job)  # type: ignore[union-attr]
        for group in groups.values():
            self._forward(group)

    # ---- steps ------------------------------------------------------------------------------------------

    def _prepare(self, job: _Job) -> bool:
        t0 = time.perf_counter()
        session, header = job.session, job.item.header
        try:
            obs = decode_observation(job.item.body, self.limits)
        except ProtocolError as exc:
            self._fail(job, "malformed", f"observation {header.seq_id} is malformed: {exc}")
            return False
        try:
            if obs.episode_start or header.episode_id != session.episode_id:
                with self.model_lock:
                    self.runtime.reset_session(session.processor, header.episode_id)
                    if self.exclusive:
                        self.runtime.backend.reset()
                session.episode_id = header.episode_id
            job.task = self._task(obs, session)
            job.prepared = self.runtime.prepare(obs, session.processor, rtc=session.rtc_enabled)
        except ObservationError as exc:
            self._fail(job, "observation", str(exc))
            return False
        job.obs = obs
        job.prep_ms = (time.perf_counter() - t0) * 1000
        return True

    def _task(self, obs: Observation, session: Session) -> str:
        if self.pin_task:
            if obs.task and obs.task != self.default_task:
                raise ObservationError(
                    f"task {obs.task!r:.80} is refused: this server is pinned to {self.default_task!r:.80}"
                )
            return self.default_task
        return obs.task or session.task or self.default_task

    def _forward(self, group: list[_Job]) -> None:
        t0 = time.perf_counter()
        try:
            with self.model_lock:
                chunks = self.runtime.forward([j.prepared for j in group], tasks=[j.task for j in group])  # type: ignore[misc]
        except InferenceError as exc:
            for job in group:
                self._fail(job, "model", str(exc))
            return
        forward_ms = (time.perf_counter() - t0) * 1000
        self.forwards += 1
        self.metrics.batch_size.observe(len(group))
        for job, chunk_model in zip(group, chunks, strict=True):
            self._reply(job, chunk_model, forward_ms, len(group))

    def _reply(self, job: _Job, chunk_model: np.ndarray, forward_ms: float, batch: int) -> None:
        session, header = job.session, job.item.header
        t0 = time.perf_counter()
        try:
            chunk_robot = self.runtime.finish(chunk_model, session.processor)
        except ObservationError as exc:
            self._fail(job, "observation", str(exc))
            return
        inference_ms = job.prep_ms + forward_ms + (time.perf_counter() - t0) * 1000
        queue_wait_ms = (job.started - job.item.received_mono) * 1000
        superseded = session.mailbox.take_superseded()
        chunk = ActionChunk(
            seq_id_echo=header.seq_id,
            client_mono_ns_echo=header.client_mono_ns,
            episode_id_echo=header.episode_id,
            chunk_model=chunk_model,
            chunk_robot=chunk_robot,
            queue_wait_ms=queue_wait_ms,
            inference_ms=inference_ms,
            superseded_seqs=superseded,
            server_load=self.load(),
            session_id=session.session_id,
        )
        reply_header = echo_header(header, MsgType.CHUNK)
        # Count before publishing: whoever holds the chunk can already read consistent metrics.
        self.metrics.requests.inc()
        self.metrics.queue_wait.observe(queue_wait_ms)
        self.metrics.inference.observe(inference_ms)
        session.stats.requests += 1
        session.stats.last_queue_wait_ms = queue_wait_ms
        session.stats.last_inference_ms = inference_ms
        outcome = "ok"
        if session.closed:
            self.metrics.dropped.labels(reason="closed").inc()
            outcome = "dropped: session closed"
        else:
            try:
                session.publish(encode_action_chunk(chunk), reply_header.pack())
            except Exception as exc:  # a publisher undeclared under us by a concurrent close
                self.metrics.dropped.labels(reason="closed").inc()
                outcome = f"dropped: {exc}"
        delay = self._executed_from(job)
        self._audit(
            job,
            queue_wait_ms,
            inference_ms,
            [delay, self.runtime.spec.chunk_size],
            superseded,
            batch,
            outcome,
        )
        if self.capture is not None and outcome == "ok":
            self.capture.submit(
                CaptureRecord(
                    header=header.pack(),
                    body=job.item.body,
                    chunk_model=chunk_model,
                    chunk_robot=chunk_robot,
                    metadata={
                        "client_uuid": session.client_uuid,
                        "session_id": session.session_id,
                        "seq_id": str(header.seq_id),
                        "episode_id": str(header.episode_id),
                        "rtc": str(bool(session.rtc_enabled)).lower(),
                        "task": job.task,
                        "model_fingerprint": self.runtime.fingerprint,
                        "model_path": str(self.runtime.model_path),
                        "batch_size": str(batch),
                    },
                )
            )

    def _executed_from(self, job: _Job) -> int:
        """The first chunk step the client will execute: the RTC delay the model actually applied."""
        name = self.runtime.spec.names.inference_delay
        if job.prepared is None or not name or name not in job.prepared.arrays:
            return 0
        return int(job.prepared.arrays[name])

    def _fail(self, job: _Job, kind: str, message: str) -> None:
        session, header = job.session, job.item.header
        self.metrics.errors.labels(kind=kind).inc()
        session.stats.errors += 1
        log.warning("client %s seq %d: %s", session.client_uuid, header.seq_id, message)
        queue_wait_ms = (job.started - job.item.received_mono) * 1000
        self._audit(
            job, queue_wait_ms, 0.0, [0, 0], session.mailbox.take_superseded(), 1, f"error: {message}"
        )
        try:
            self.send_error(session, header, message)
        except Exception:  # the client learns by timeout instead
            log.debug("error event to %s not sent", session.client_uuid, exc_info=True)

    def _audit(
        self,
        job: _Job,
        queue_wait_ms: float,
        inference_ms: float,
        chunk_range: list[int],
        superseded: int,
        batch: int,
        outcome: str,
    ) -> None:
        if self.audit is None:
            return
        header = job.item.header
        self.audit.write(
            AuditRecord(
                session_id=job.session.session_id,
                client_uuid=job.session.client_uuid,
                seq_id=header.seq_id,
                episode_id=header.episode_id,
                session_epoch=header.session_epoch,
                queue_wait_ms=queue_wait_ms,
                inference_ms=inference_ms,
                chunk_range=chunk_range,
                superseded_seqs=superseded,
                batch_size=batch,
                outcome=outcome,
            )
        )
