"""The edge daemon's core: the arm, cameras, inference engine, recorder and control loop, and what the API asks.

Built by `spinal_edge.assembly.build_daemon` (or directly in tests); driven by `spinal_edge.runner` and the API.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from spinal_edge import __version__
from spinal_edge.arm import Arm
from spinal_edge.cameras import CameraFrame, CameraSource
from spinal_edge.control.gil import GilHandoff
from spinal_edge.control.loop import ControlLoop
from spinal_edge.control.ports import PolicyPort, RobotMode
from spinal_edge.control.scheduling import ProcessScheduling
from spinal_edge.errors import DeviceError, ModeError
from spinal_edge.live_cameras import apply_camera_changes
from spinal_edge.settings import EdgeConfig
from spinal_edge.settings_store import SettingsStore
from spinal_edge.warnings_log import WarningLog

if TYPE_CHECKING:
    from spinal_edge.recorder import EpisodeRecorder, EpisodeSummary

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StartedEpisode:
    """What starting an episode did: the episode, and whether the policy's server acknowledged its reset."""

    episode: EpisodeSummary
    engine_reset_acked: bool


class EdgeDaemon:
    """One robot cell on this device. Thread-safe: the API calls it from its worker threads."""

    def __init__(
        self,
        store: SettingsStore,
        *,
        arm: Arm,
        cameras: dict[str, CameraSource],
        policy: PolicyPort | None = None,
        engine: Any = None,
        recorder: EpisodeRecorder | None = None,
        warnings: WarningLog | None = None,
    ) -> None:
        config = store.config
        self.store = store
        self.arm = arm
        self.cameras = cameras
        self.policy = policy
        self.engine = engine  # the inference engine behind `policy` (pause/resume/reset), if any
        self.recorder = recorder
        self.warnings = warnings or WarningLog()
        self.loop = ControlLoop(
            arm,
            cameras,
            rate_hz=config.loop.rate_hz,
            policy=policy,
            recorder=recorder,
            warnings=self.warnings,
            state_stale_ms=config.robot.state_stale_ms,
            realtime_priority=config.loop.realtime_priority,
            cpus=config.loop.cpus,
            gil_handoff=_gil_handoff(config),
            warn_realtime_refused=config.loop.realtime_explicit,
        )
        # What `spinal-edge run` obtained for the rest of the process (daemon threads' priority, locked memory).
        self.process_scheduling = ProcessScheduling()
        self.task = config.inference.task
        self._mode_lock = threading.Lock()
        self._started_mono = time.monotonic()
        #: Random per daemon start, in /healthz and the status: clients tell a restart from a network outage.
        self.boot_id = secrets.token_hex(8)
        self._started = False
        if store.overlay_error:
            self.warnings.add("settings_rejected", store.overlay_error)
        store.add_listener(self._apply_settings)

    @property
    def config(self) -> EdgeConfig:
        return self.store.config

    # -- life cycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Recover torn episodes, open the arm, start cameras, engine, recorder and the loop (idle)."""
        if self.recorder is not None:
            self.recorder.recover()
            self.recorder.start()
        try:
            self.arm.start()
        except DeviceError as exc:
            # Without the arm the daemon still serves its API, so a person can see what is wrong.
            self.warnings.add("mcu_unavailable", str(exc))
            log.error("arm unavailable", extra={"error": str(exc)})
        for camera in self.cameras.values():
            camera.start()
        if self.engine is not None:
            self.engine.start()
            self.engine.pause()
        self.loop.start()
        self._started = True
        start_mode = RobotMode(self.config.start_mode)
        if start_mode is not RobotMode.IDLE:
            # The MCU link comes up on its own thread; enter the mode once the arm reports its state.
            threading.Thread(
                target=self._enter_start_mode, args=(start_mode,), name="start-mode", daemon=True
            ).start()

    def _enter_start_mode(self, mode: RobotMode, warn_after_s: float = 60.0) -> None:
        deadline = time.monotonic() + warn_after_s
        while self._started and self.arm.latest_state() is None:
            if deadline and time.monotonic() > deadline:
                self.warnings.add(
                    "start_mode_waiting",
                    f"start_mode {mode.value} waits for the MCU: no state in {warn_after_s:g} s",
                )
                deadline = 0.0
            time.sleep(0.05)
        if not self._started:
            return
        try:
            self.set_mode(mode, reason="start_mode")
        except ModeError as exc:
            self.warnings.add("start_mode_refused", f"start_mode {mode.value}: {exc}")

    def stop(self) -> None:
        """Hold the arm, finish a running episode, then stop every part (reverse order of start)."""
        if not self._started:
            return
        self._started = False
        try:
            self.loop.request_mode(RobotMode.IDLE, "daemon stopping")
        except Exception:
            log.exception("holding the arm at shutdown failed")
        if self.recorder is not None:
            self.recorder.stop()
        self.loop.stop()
        if self.engine is not None:
            self.engine.stop()
        for camera in self.cameras.values():
            camera.stop()
        self.arm.stop()

    # -- control ---------------------------------------------------------------------------------------

    def set_mode(self, mode: RobotMode | str, *, reason: str = "api") -> RobotMode:
        """Switch who drives the arm; the arm holds at every change. Raises ModeError when it cannot."""
        mode = RobotMode(mode)
        with self._mode_lock:
            current = self.loop.mode
            if mode is not RobotMode.IDLE and self.arm.latest_state() is None:
                raise ModeError(
                    f"{mode.value} needs the arm, but the MCU has sent no state yet; check its cable and [robot] mcu_port"
                )
            if mode is RobotMode.TELEOP and not self.arm.has_leader:
                raise ModeError("teleop needs a leader arm; set [robot] leader = true and wire it to the MCU")
            if mode is RobotMode.POLICY:
                if self.policy is None or self.engine is None:
                    raise ModeError(
                        'policy mode needs an inference engine; set [inference] engine = "remote"'
                    )
                if self.policy.failed:
                    raise ModeError(
                        "the inference engine gave up (DEAD); fix the server or its settings, then restart"
                    )
            if mode is RobotMode.POLICY and current is not RobotMode.POLICY:
                # A fresh start for the policy: empty action queue, new inference episode.
                self.engine.reset()
                self.engine.resume()
            applied = self.loop.request_mode(mode, reason)
            if current is RobotMode.POLICY and mode is not RobotMode.POLICY and self.engine is not None:
                self.engine.pause()
            if not applied:
                raise ModeError(
                    "the control loop did not take the mode change within 2 s; check the daemon log"
                )
            return mode

    def hold(self) -> None:
        """Stop whatever drives the arm and keep the current position (idle)."""
        self.set_mode(RobotMode.IDLE, reason="hold")

    def estop(self) -> None:
        """Torque off now (the MCU enforces it) and go idle."""
        self.arm.estop()
        self.warnings.add("estop", "emergency stop: torque is off until it is turned on again")
        self.set_mode(RobotMode.IDLE, reason="estop")

    def set_torque(self, enabled: bool) -> None:
        self.set_mode(RobotMode.IDLE, reason="torque change")
        self.arm.set_torque(enabled)

    # -- episodes --------------------------------------------------------------------------------------

    def start_episode(
        self, task: str | None = None, *, max_duration_s: float | None = None
    ) -> StartedEpisode:
        """Start recording an episode with `task` (default: the current task), ended by the recorder itself
        after `max_duration_s` when given. In policy mode the policy starts a new episode first (its server's
        ack awaited up to 1 s, as in `reset_episode`)."""
        recorder = self._require_recorder()
        if task is not None:
            self.set_task(task)
        acked = False
        if self.engine is not None and self.loop.mode is RobotMode.POLICY:
            acked = bool(self.engine.reset(wait_s=1.0))
        episode = recorder.start_episode(self.task, max_duration_s=max_duration_s)
        return StartedEpisode(episode, engine_reset_acked=acked)

    def stop_episode(self) -> EpisodeSummary:
        return self._require_recorder().stop_episode()

    def discard_episode(self) -> EpisodeSummary:
        return self._require_recorder().discard_episode()

    def reset_episode(self) -> dict[str, Any]:
        """An episode boundary for the policy: the arm holds, the engine's queue and server state start clean."""
        mode = self.loop.mode
        self.loop.request_mode(mode, "episode reset")
        acked = bool(self.engine.reset(wait_s=1.0)) if self.engine is not None else False
        return {"mode": mode.value, "engine_reset_acked": acked}

    def set_task(self, task: str) -> None:
        self.task = task
        if self.policy is not None and hasattr(self.policy, "task"):
            self.policy.task = task

    def _require_recorder(self) -> EpisodeRecorder:
        if self.recorder is None:
            raise ModeError("recording is off; set [recording] enabled = true")
        return self.recorder

    # -- what the API shows ----------------------------------------------------------------------------

    def snapshot(self, camera: str) -> CameraFrame | None:
        source = self.cameras.get(camera)
        return None if source is None else source.slot.peek()

    def status(self) -> dict[str, Any]:
        config = self.config
        loop = self.loop
        nominal_us = 1e6 / loop.rate_hz
        timing = loop.stats.summary(nominal_us)
        state = self.arm.latest_state()
        now_ns = time.monotonic_ns()
        return {
            "version": __version__,
            "device_name": config.device_name,
            "boot_id": self.boot_id,
            "uptime_s": round(time.monotonic() - self._started_mono, 1),
            "mode": loop.mode.value,
            "task": self.task,
            "inference": self._inference_status(),
            "loop": {
                "running": loop.running,
                "rate_hz": loop.rate_hz,
                "ticks": loop.stats.ticks,
                "overruns": loop.overruns,
                "faults": loop.faults,
                "targets_sent": loop.targets_sent,
                "policy_holds": loop.policy_holds,
                **{
                    k: None if v is None else {"p50": v.p50, "p99": v.p99, "max": v.max}
                    for k, v in timing.items()
                },
                "realtime_priority": loop.thread_priority,
                "daemon_realtime_priority": self.process_scheduling.daemon_priority,
                "memory_locked": self.process_scheduling.memory_locked,
                "realtime_error": "; ".join(
                    e for e in (loop.realtime_error, *self.process_scheduling.errors) if e
                ),
            },
            # A copy: the setup page may swap cameras meanwhile (spinal_edge.live_cameras).
            "cameras": {name: dataclasses.asdict(cam.stats()) for name, cam in dict(self.cameras).items()},
            "mcu": {
                "connected": self.arm.connected,
                "joint_names": list(self.arm.joint_names),
                "has_leader": self.arm.has_leader,
                "state_age_ms": None if state is None else round((now_ns - state.t_mono_ns) / 1e6, 1),
                "positions": None if state is None else [round(float(v), 3) for v in state.positions],
                "temperatures_c": None
                if state is None or state.temperatures_c is None
                else [round(float(v), 1) for v in state.temperatures_c],
                "voltage_v": None if state is None else state.voltage_v,
                "watchdog_hold": None if state is None else state.watchdog_hold,
                "torque_enabled": None if state is None else state.torque_enabled,
                "link": self.arm.status(),
            },
            "recorder": None if self.recorder is None else self.recorder.status(),
            "warnings": [
                {"code": w.code, "message": w.message, "time": w.wall_time, "repeats": w.repeats}
                for w in self.warnings.recent()
            ],
        }

    def _inference_status(self) -> dict[str, Any]:
        if self.policy is None:
            return {"engine": "none", "state": "off", "ready": False, "failed": False}
        stats = self.policy.status()
        return {"engine": self.config.engine_kind(), **stats}

    # -- settings changed at runtime -------------------------------------------------------------------------

    def _apply_settings(self, old: EdgeConfig, new: EdgeConfig) -> None:
        if new.loop.rate_hz != old.loop.rate_hz:
            self.loop.set_rate(new.loop.rate_hz)
        if new.inference.task != old.inference.task:
            self.set_task(new.inference.task)
        if self.recorder is not None and new.recording != old.recording:
            self.recorder.settings = new.recording
        if new.cameras != old.cameras:
            with self._mode_lock:  # no mode change (and so no engine swap) meanwhile
                apply_camera_changes(self, old, new)
        restart = [
            section for section in ("http", "robot", "log") if getattr(new, section) != getattr(old, section)
        ]
        if new.loop.model_copy(update={"rate_hz": 0.0}) != old.loop.model_copy(update={"rate_hz": 0.0}):
            restart.append("loop")  # scheduling is set up once, at start
        if _inference_changed(old, new):
            restart.append("inference")
        if restart:
            self.warnings.add(
                "restart_required",
                f"changed settings in {', '.join(sorted(set(restart)))} take effect after a daemon restart",
            )


def _gil_handoff(config: EdgeConfig) -> GilHandoff | None:
    wake_us = config.loop.wake_switch_interval_us
    return GilHandoff(wake_s=wake_us / 1e6) if wake_us else None


def _inference_changed(old: EdgeConfig, new: EdgeConfig) -> bool:
    a = {**old.inference_options(), "task": None, "engine": old.engine_kind()}
    b = {**new.inference_options(), "task": None, "engine": new.engine_kind()}
    return a != b
