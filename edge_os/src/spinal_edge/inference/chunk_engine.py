"""The engine shared by remote and local inference: control-loop side, one worker, fail-safe ladder.

`RemoteEngine` and `LocalEngine` are this engine over a Zenoh or an in-process `ChunkSource`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
from spinal.protocol import Telemetry

from spinal_edge.inference.action_queue import ActionQueue, QueuedAction
from spinal_edge.inference.clock import Clock, MonotonicClock
from spinal_edge.inference.config import InferenceConfig
from spinal_edge.inference.engine import EngineStats, InferenceEngine
from spinal_edge.inference.errors import ContractViolation, InferenceError, LinkLost, RequestFailed
from spinal_edge.inference.failsafe import FailSafe, FailSafeThresholds, Transition
from spinal_edge.inference.handshake import check_same_contract
from spinal_edge.inference.latency import LatencyTracker, steps_for
from spinal_edge.inference.observation import BadObservation, to_wire_observation
from spinal_edge.inference.source import ChunkReply, ChunkRequest, ChunkSource, RequestCancelled, SessionInfo
from spinal_edge.inference.types import (
    ChunkOrigin,
    ClientState,
    EngineAction,
    FallbackMode,
    RobotObservation,
    RobotSpec,
)

log = logging.getLogger("spinal_edge.inference")

_MAX_WORKER_ERROR_STREAK = 10
_IDLE_WAIT_S = 0.05  # the worker re-evaluates time-driven transitions at least this often
_U32 = 2**32


class ChunkEngine(InferenceEngine):
    """Queue + latency + fail-safe on the control side; one worker thread owns the `ChunkSource`.

    One request is in flight at a time (RTC merges are only correct against the snapshot they were
    requested with). `on_dead(reason)` is called once, from the worker, when the engine goes DEAD.
    """

    def __init__(
        self,
        config: InferenceConfig,
        robot: RobotSpec,
        source: ChunkSource,
        *,
        clock: Clock | None = None,
        on_dead: Callable[[str], None] | None = None,
        on_transition: Callable[[Transition], None] | None = None,
        seed: int | None = None,
    ) -> None:
        self._cfg = config
        self._robot = robot
        self._src = source
        self._clock: Clock = clock or MonotonicClock()
        self._on_dead = on_dead
        self._rand = random.Random(seed)
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._stopped = False
        self._latency = LatencyTracker(config.latency_window, config.latency_quantile)
        self._fsm = FailSafe(
            FailSafeThresholds(config.degraded_after_s, config.reconnect_after_s, config.max_offline_s),
            on_transition=on_transition,
        )
        self._queue: ActionQueue | None = None
        self._session: SessionInfo | None = None
        self._contract: SessionInfo | None = None
        self._slot: RobotObservation | None = None
        self._episode = 0
        self._epoch = 0
        self._seq = 0
        self._episode_start = True
        self._pending_reset: int | None = None
        self._acked_episode = -1
        self._paused = False
        self._last: QueuedAction | None = None
        self._attempt = 0
        self._next_connect_at = 0.0
        self._next_heartbeat_at = 0.0
        self._c: Counter[str] = Counter()
        self._last_inference_ms = 0.0
        self._last_queue_wait_ms = 0.0
        self._warned_get_action = False
        # Queued actions at or below which the next chunk is requested (buffer_time_s of playback).
        self._gate_steps = math.floor(config.buffer_time_s / robot.dt + 1e-9)

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._src.set_wakeup(self._wake.set)
        self._fsm.started(self._clock.now())
        self._thread = threading.Thread(target=self._run, name="spinal-inference", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        with self._lock:  # the merge re-checks _stop under this lock: nothing lands after the clear
            self._stop.set()
            if self._queue is not None:
                self._queue.clear()  # a stopped engine hands out only its fallback
        self._src.interrupt()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("inference worker did not stop within %.1f s; closing its transport", timeout_s)
                self._src.close()
        else:
            self._src.close()
        with self._cond:
            self._cond.notify_all()

    # ---- control-loop side (O(1), never blocks on the network, never raises) -------------------

    def notify_observation(self, obs: RobotObservation) -> None:
        try:
            if obs.captured_at is None:
                obs = dataclasses.replace(obs, captured_at=self._clock.now())
            self._slot = obs  # one reference swap: latest wins, nothing to lock against
            self._wake.set()
        except Exception:  # a bad object must not take the control loop down
            self._c["bad_observations"] += 1

    def get_action(self) -> EngineAction:
        try:
            now = self._clock.now()
            q = self._queue
            qa = None
            with self._fsm.lock:
                if q is not None and self._fsm.dead_reason is None:
                    qa, dropped = q.pop(now - self._cfg.max_action_age_s)
                    if dropped:
                        self._c["stale_drops"] += dropped
                state = self._fsm.evaluate(now, qa is not None)
            if q is not None and q.qsize() <= self._gate_steps:
                self._wake.set()
            if qa is not None:
                self._last = qa
                o = qa.origin
                return EngineAction(
                    qa.values, None, o.session_id, o.seq_id, o.episode_id, qa.chunk_index,
                    now - o.source_time, state,
                )  # fmt: skip
            return self._fallback(state)
        except Exception:
            if not self._warned_get_action:
                self._warned_get_action = True
                log.exception("get_action failed; holding (values=None)")
            return EngineAction(None, FallbackMode.HOLD, "", 0, self._episode, -1, math.nan, self.state)

    def _fallback(self, state: ClientState) -> EngineAction:
        self._c["fallback_ticks"] += 1
        mode = self._cfg.fallback
        last = self._last
        values: np.ndarray | None = None
        if mode is FallbackMode.REPEAT_LAST and last is not None:
            values = last.values.copy()
        elif mode is FallbackMode.ZERO:
            values = np.zeros(self._robot.action_dim, np.float32)
        session = last.origin.session_id if last is not None else self._session_id()
        seq = last.origin.seq_id if last is not None else 0
        return EngineAction(values, mode, session, seq, self._episode, -1, math.nan, state)

    def reset(self, wait_s: float = 0.0) -> bool:
        with self._lock:
            self._episode = (self._episode + 1) % _U32
            episode = self._episode
            self._pending_reset = episode
            self._episode_start = True
            self._slot = None
            self._last = None
            if self._queue is not None:
                self._queue.clear()
        self._c["resets"] += 1
        self._src.interrupt()
        self._wake.set()
        if wait_s <= 0:
            return False
        return self._wait_for(lambda: self._acked_episode == episode, wait_s)

    def pause(self) -> None:
        self._paused = True
        self._fsm.paused(self._clock.now())
        self._wake.set()

    def resume(self) -> None:
        self._paused = False
        self._fsm.resumed(self._clock.now())
        self._wake.set()

    # ---- status --------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        s = self._session
        return s is not None and s.warmed_up and self._fsm.session_up and self._fsm.dead_reason is None

    @property
    def failed(self) -> bool:
        return self._fsm.dead_reason is not None

    @property
    def state(self) -> ClientState:
        return self._fsm.state

    @property
    def config(self) -> InferenceConfig:
        return self._cfg

    @property
    def session(self) -> SessionInfo | None:
        """The session currently open, if any."""
        return self._session

    @property
    def episode_id(self) -> int:
        return self._episode

    @property
    def transitions(self) -> list[Transition]:
        """The recent state transitions, oldest first."""
        return list(self._fsm.history)

    @property
    def queue(self) -> ActionQueue | None:
        """The action queue (exists once the first session fixed its merge mode)."""
        return self._queue

    def wait_ready(self, timeout_s: float) -> bool:
        self._wait_for(lambda: self.ready or self.failed, timeout_s)
        return self.ready

    @property
    def stats(self) -> EngineStats:
        src = self._src.counters()
        q = self._queue
        p50 = self._latency.percentile(0.5)
        p95 = self._latency.percentile(0.95)
        return EngineStats(
            state=self._fsm.state,
            ready=self.ready,
            failed=self.failed,
            failure_reason=self._fsm.dead_reason or "",
            paused=self._paused,
            session_id=self._session_id(),
            episode_id=self._episode,
            queue_depth=q.qsize() if q is not None else 0,
            requests=self._c["requests"],
            chunks_merged=self._c["chunks_merged"],
            request_failures=self._c["request_failures"],
            requests_cancelled=self._c["requests_cancelled"],
            dropped_after_reset=self._c["dropped_after_reset"],
            stale_chunks=src.stale_chunks,
            bad_messages=src.bad_messages,
            bad_chunks=self._c["bad_chunks"],
            bad_observations=self._c["bad_observations"],
            stale_drops=self._c["stale_drops"],
            fallback_ticks=self._c["fallback_ticks"],
            reconnects=self._c["reconnects"],
            handshake_failures=self._c["handshake_failures"],
            resets=self._c["resets"],
            reset_acks=self._c["reset_acks"],
            heartbeats=src.heartbeats,
            drain_notices=src.drain_notices,
            worker_errors=self._c["worker_errors"],
            superseded_seqs=self._c["superseded_seqs"],
            actions_trimmed=self._c["actions_trimmed"],
            latency_p50_ms=None if p50 is None else p50 * 1000.0,
            latency_p95_ms=None if p95 is None else p95 * 1000.0,
            delay_steps=self._delay_steps(),
            last_inference_ms=self._last_inference_ms,
            last_queue_wait_ms=self._last_queue_wait_ms,
            transitions=dict(self._fsm.transition_counts),
            state_entries=dict(self._fsm.state_entries),
        )

    # ---- worker --------------------------------------------------------------------------------

    def _run(self) -> None:
        streak = 0
        try:
            while not self._stop.is_set():
                self._wake.clear()
                now = self._clock.now()
                if self._fsm.dead_reason is not None:
                    break
                if self._fsm.should_die(now):
                    off = self._fsm.offline_for(now) or 0.0
                    self._go_dead(now, f"offline for {off:.1f} s (max_offline_s={self._cfg.max_offline_s})")
                    break
                try:
                    wait = self._step(now)
                    streak = 0
                except ContractViolation as exc:
                    self._go_dead(self._clock.now(), str(exc))
                    break
                except Exception as exc:
                    streak += 1
                    self._c["worker_errors"] += 1
                    log.exception("inference worker error (%d in a row)", streak)
                    if streak >= _MAX_WORKER_ERROR_STREAK:
                        self._go_dead(self._clock.now(), f"{streak} worker errors in a row, last: {exc!r}")
                        break
                    wait = 0.5
                if wait > 0 and not self._stop.is_set():
                    self._wake.wait(wait)
        finally:
            self._release_transport()

    def _step(self, now: float) -> float:
        """One pass of the worker; returns how long to wait before the next (0: go again now)."""
        if not self._fsm.session_up:
            return self._connect(now)
        link = self._src.link_status()
        if link.draining:
            self._fsm.server_lost(now, "server announced a drain")
            self._drop_session(now, "server draining: re-handshaking")
            return 0.0
        if link.server_present:
            self._fsm.server_present(now)
        else:
            self._fsm.server_lost(now, link.detail or "server liveliness token dropped")
        if self._fsm.should_reconnect(now):
            off = self._fsm.offline_for(now) or 0.0
            self._drop_session(now, f"offline {off:.1f} s >= reconnect_after_s: re-handshaking")
            return 0.0
        if self._pending_reset is not None:
            self._send_reset()
            return 0.0
        heartbeat_in = self._maybe_heartbeat(now)
        q = self._queue
        assert q is not None  # made by the first session
        cutoff = now - self._cfg.max_action_age_s
        if self._paused:
            self._fsm.evaluate(now, lambda: q.has_fresh(cutoff))
            return min(_IDLE_WAIT_S, heartbeat_in)
        if q.qsize() > self._gate_steps:
            self._fsm.evaluate(now, lambda: q.has_fresh(cutoff))
            return min(_IDLE_WAIT_S, heartbeat_in)
        self._fsm.chunk_wanted(now)
        self._fsm.evaluate(now, lambda: q.has_fresh(cutoff))
        if not link.server_present:
            return min(_IDLE_WAIT_S, heartbeat_in)  # nobody to ask; the offline clock is running
        obs = self._slot
        if obs is None:
            return min(_IDLE_WAIT_S, heartbeat_in)  # notify_observation wakes us
        self._slot = None
        self._cycle(obs, q)
        return 0.0

    def _cycle(self, obs: RobotObservation, q: ActionQueue) -> None:
        """One request: snapshot, send, await its chunk, merge (or record why not)."""
        session = self._session
        assert session is not None
        with self._lock:
            self._seq += 1
            seq, episode, epoch = self._seq, self._episode, self._epoch
            episode_start = self._episode_start
        consumed_before = q.consumed_total
        prefix_model = prefix_robot = None
        if session.rtc:
            prefix_model, prefix_robot = q.left_over(session.rtc_execution_horizon)
        cameras = session.expected_cameras or self._robot.cameras
        try:
            wire_obs = to_wire_observation(
                obs, self._robot, cameras=cameras, task=self._cfg.task,
                jpeg_quality=self._cfg.jpeg_quality, delay_steps=self._delay_steps(),
                prefix_model=prefix_model, prefix_robot=prefix_robot, episode_start=episode_start,
            )  # fmt: skip
        except BadObservation as exc:
            self._c["bad_observations"] += 1
            log.warning("observation not sent: %s", exc)
            return
        request = ChunkRequest(seq, episode, epoch, wire_obs)

        def cancelled() -> bool:
            return self._stop.is_set() or self._episode != episode or self._epoch != epoch

        self._c["requests"] += 1
        t_send = self._clock.now()
        try:
            reply = self._src.request(request, self._request_timeout(t_send), cancelled)
        except RequestCancelled:
            self._c["requests_cancelled"] += 1
            return
        except RequestFailed as exc:
            self._fsm.request_failed(self._clock.now(), str(exc))
            self._c["request_failures"] += 1
            log.warning("request %d failed: %s", seq, exc)
            return
        except LinkLost as exc:
            self._fsm.server_lost(self._clock.now(), str(exc))
            self._c["request_failures"] += 1
            return
        now = self._clock.now()
        latency = now - t_send
        chunk_model, chunk_robot = self._usable_chunk(reply, session)
        if chunk_robot is None:
            self._fsm.request_failed(now, "server sent an unusable chunk")
            return
        origin = ChunkOrigin(
            reply.session_id or session.session_id, seq, episode, obs.captured_at or t_send,
            reply.inference_ms, reply.queue_wait_ms,
        )  # fmt: skip
        with self._lock:  # reset() bumps the episode under this lock: a stale chunk can never merge
            if self._episode != episode or self._epoch != epoch or self._stop.is_set():
                self._c["dropped_after_reset"] += 1
                return
            merged = q.merge(
                chunk_model, chunk_robot, real_delay=steps_for(latency, self._robot.dt),
                consumed_before=consumed_before, origin=origin,
            )  # fmt: skip
            if self._episode_start and episode_start:
                self._episode_start = False
        self._latency.add(latency)
        self._last_inference_ms = reply.inference_ms
        self._last_queue_wait_ms = reply.queue_wait_ms
        self._fsm.chunk_merged(now)
        self._fsm.evaluate(now, lambda: q.has_fresh(now - self._cfg.max_action_age_s))
        # Counters last: whoever sees the count also sees the state it implies.
        self._c["actions_trimmed"] += merged.trimmed
        self._c["superseded_seqs"] += reply.superseded_seqs
        self._c["chunks_merged"] += 1

    def _usable_chunk(
        self, reply: ChunkReply, session: SessionInfo
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        robot = reply.chunk_robot
        model = reply.chunk_model if reply.chunk_model is not None else None
        problem = ""
        if robot is None or robot.ndim != 2 or robot.shape[0] == 0:
            problem = (
                f"chunk_robot shape {None if robot is None else robot.shape} is not [horizon>0, action_dim]"
            )
        elif robot.shape[1] != self._robot.action_dim:
            problem = f"chunk has {robot.shape[1]} action columns, the robot has {self._robot.action_dim}"
        elif model is None and session.rtc:
            problem = "RTC session but the chunk has no model-space actions"
        elif model is not None and model.shape != robot.shape:
            problem = f"chunk_model {model.shape} and chunk_robot {robot.shape} differ in shape"
        elif not np.isfinite(robot).all() or (model is not None and not np.isfinite(model).all()):
            problem = "chunk holds NaN or infinity"
        if problem:
            self._c["bad_chunks"] += 1
            log.warning("chunk dropped: %s", problem)
            return None, None
        return (model if model is not None else robot), robot

    def _connect(self, now: float) -> float:
        if now < self._next_connect_at:
            self._fsm.evaluate(now, lambda: self._queue_fresh(now))
            return min(self._next_connect_at - now, _IDLE_WAIT_S)
        with self._lock:
            self._epoch = (self._epoch + 1) % _U32
            epoch = self._epoch
        try:
            info = self._src.open_session(epoch, self._robot)
            if self._contract is not None:
                try:
                    check_same_contract(self._contract, info)
                except ContractViolation:
                    self._src.close_session()
                    raise
        except ContractViolation:
            raise
        except InferenceError as exc:
            delay = self._cfg.backoff.delay(self._attempt, self._rand.random())
            self._attempt += 1
            self._c["handshake_failures"] += 1
            self._next_connect_at = self._clock.now() + delay
            log.warning("handshake attempt %d failed (%s); retrying in %.2f s", self._attempt, exc, delay)
            self._fsm.evaluate(now, lambda: self._queue_fresh(now))
            return min(delay, _IDLE_WAIT_S)
        first = self._contract is None
        if first:
            self._contract = info
            self._queue = ActionQueue(replace=info.rtc)
        for warning in info.warnings:
            log.warning("policy server: %s", warning)
        self._session = info
        self._attempt = 0
        with self._lock:
            self._episode_start = True
        self._next_heartbeat_at = 0.0
        self._fsm.session_opened(self._clock.now())
        if not first:
            self._c["reconnects"] += 1
        log.info(
            "inference session %s open (model %s@%s, rtc=%s, horizon=%d, chunk=%d)",
            info.session_id, info.model_repo, info.model_revision, info.rtc,
            info.rtc_execution_horizon, info.chunk_size,
            extra={"event": "inference_session", "session_id": info.session_id, "reconnect": not first},
        )  # fmt: skip
        with self._cond:
            self._cond.notify_all()
        return 0.0

    def _drop_session(self, now: float, reason: str) -> None:
        self._fsm.begin_reconnect(now, reason)
        self._session = None
        try:
            self._src.close_session()
        except Exception:
            log.debug("closing the abandoned session failed", exc_info=True)
        self._attempt = 0
        self._next_connect_at = now

    def _send_reset(self) -> None:
        with self._lock:
            episode = self._pending_reset
            self._pending_reset = None
        if episode is None:
            return
        if self._src.reset_episode(episode, self._cfg.reset_timeout_s):
            self._acked_episode = episode
            self._c["reset_acks"] += 1
            with self._cond:
                self._cond.notify_all()
        else:
            log.warning(
                "server did not acknowledge the reset to episode %d; its next observation says so", episode
            )

    def _maybe_heartbeat(self, now: float) -> float:
        if now >= self._next_heartbeat_at:
            self._next_heartbeat_at = now + self._cfg.heartbeat_s
            p50 = self._latency.percentile(0.5)
            p95 = self._latency.percentile(0.95)
            q = self._queue
            try:
                self._src.heartbeat(
                    Telemetry(
                        client_uuid=self._cfg.client_uuid,
                        session_id=self._session_id(),
                        state=self._fsm.state.value,
                        paused=self._paused,
                        queue_depth=q.qsize() if q is not None else 0,
                        latency_p50_ms=0.0 if p50 is None else p50 * 1000.0,
                        latency_p95_ms=0.0 if p95 is None else p95 * 1000.0,
                        counters={k: float(v) for k, v in self._c.items()},
                    )
                )
            except Exception:
                log.debug("heartbeat failed", exc_info=True)
        return max(0.0, self._next_heartbeat_at - now)

    def _go_dead(self, now: float, reason: str) -> None:
        if not self._fsm.die(now, reason):
            return
        if self._queue is not None:
            self._queue.clear()
        log.error("inference engine DEAD: %s", reason, extra={"event": "inference_dead", "reason": reason})
        with self._cond:
            self._cond.notify_all()
        if self._on_dead is not None:
            try:
                self._on_dead(reason)
            except Exception:
                log.exception("the on_dead callback failed")

    def _release_transport(self) -> None:
        try:
            if self._session is not None and self._fsm.session_up:
                self._src.close_session()
        except Exception:
            log.debug("session close failed", exc_info=True)
        finally:
            self._session = None
            self._src.close()
            with self._cond:
                self._cond.notify_all()

    # ---- helpers -------------------------------------------------------------------------------

    def _queue_fresh(self, now: float) -> bool:
        q = self._queue
        return q is not None and q.has_fresh(now - self._cfg.max_action_age_s)

    def _request_timeout(self, now: float) -> float:
        """`request_timeout_s`, cut short where the session would be abandoned anyway (reconnect_after_s)."""
        off = self._fsm.offline_for(now) or 0.0
        until_reconnect = self._cfg.reconnect_after_s - off
        return max(0.01, min(self._cfg.request_timeout_s, until_reconnect))

    def _delay_steps(self) -> int:
        s = self._session
        cap = s.chunk_size - 1 if s is not None and s.chunk_size > 0 else None
        return self._latency.delay_steps(self._robot.dt, cap)

    def _session_id(self) -> str:
        s = self._session
        return s.session_id if s is not None else ""

    def _wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        # Real time, not the engine clock: a caller's wait must end even under a manual test clock.
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return predicate()
                self._cond.wait(min(remaining, 0.1))
            return True
