"""The control loop: at each deadline, latest state and frames -> policy or leader -> MCU targets -> recorder.

Owned by the daemon; one thread that only hands values to other threads (engine slot, MCU driver, recorder queue)
and never waits on the network or the disk. Mode changes requested by the API are applied here, between ticks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from spinal_edge.arm import Arm
from spinal_edge.cameras.frames import CameraFrame
from spinal_edge.cameras.source import CameraSource
from spinal_edge.control.gil import GilHandoff
from spinal_edge.control.ports import ActionOrigin, PolicyPort, RecorderPort, RobotMode
from spinal_edge.control.scheduling import (
    pin_thread,
    realtime_priority_of,
    set_realtime_priority,
    tighten_timer_slack,
)
from spinal_edge.control.timing import Deadlines, TickStats, sleep_until
from spinal_edge.warnings_log import WarningLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModeChange:
    """A mode the loop entered, why, and when (monotonic ns)."""

    mode: RobotMode
    reason: str
    t_mono_ns: int


class ControlLoop:
    """Runs `tick` at `rate_hz` on its own thread; `tick` can also be driven directly (tests, benchmarks)."""

    def __init__(
        self,
        arm: Arm,
        cameras: Mapping[str, CameraSource],
        *,
        rate_hz: float,
        policy: PolicyPort | None = None,
        recorder: RecorderPort | None = None,
        warnings: WarningLog | None = None,
        state_stale_ms: float = 500.0,
        realtime_priority: int = 0,
        cpus: Sequence[int] = (),
        gil_handoff: GilHandoff | None = None,
        warn_realtime_refused: bool = True,
    ) -> None:
        self.arm = arm
        self.cameras = dict(cameras)
        self.policy = policy
        self.recorder = recorder
        self.warnings = warnings or WarningLog()
        self.stats = TickStats()
        self._rate_hz = float(rate_hz)
        self._new_rate: float | None = None
        self._stale_ns = int(state_stale_ms * 1e6)
        self._realtime_priority = realtime_priority
        self._cpus = tuple(cpus)
        self._handoff = gil_handoff
        self._warn_realtime_refused = warn_realtime_refused
        self._mode = RobotMode.IDLE
        self._requested: tuple[RobotMode, str] | None = None
        self._applied = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_camera_index: dict[str, int] = {}
        self._last_target: np.ndarray | None = None
        self.history: list[ModeChange] = []
        self.faults = 0
        self.targets_sent = 0
        self.frames_offered = 0
        self.frames_refused = 0
        self.camera_frames_offered = 0
        self.camera_frames_refused = 0
        self.policy_holds = 0
        self.observations_without_cameras = 0
        self.realtime_error = ""
        self.affinity_error = ""
        self.thread_priority = 0  # the SCHED_FIFO priority the loop thread got (0: normal scheduling)
        self.native_id: int | None = None
        self._prepared = threading.Event()
        self._deadlines: Deadlines | None = None

    # -- control from other threads ------------------------------------------------------------------

    @property
    def mode(self) -> RobotMode:
        return self._mode

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    @property
    def overruns(self) -> int:
        """Ticks skipped because the loop fell a whole period or more behind."""
        return 0 if self._deadlines is None else self._deadlines.overruns

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def request_mode(self, mode: RobotMode, reason: str, *, timeout: float = 2.0) -> bool:
        """Ask for `mode`; the loop enters it (and holds the arm) before its next tick. True once applied."""
        with self._lock:
            self._applied.clear()
            self._requested = (RobotMode(mode), reason)
            if not self.running:
                self._apply_request(time.monotonic_ns())
                return True
        return self._applied.wait(timeout)

    def set_rate(self, rate_hz: float) -> None:
        """Change the loop rate from the next tick on."""
        self._new_rate = float(rate_hz)
        if not self.running:
            self._rate_hz = float(rate_hz)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="control-loop", daemon=True)
        self._thread.start()

    def wait_prepared(self, timeout: float) -> bool:
        """Wait until the loop thread has set up its scheduling (`realtime_error`, `thread_priority` are final)."""
        return self._prepared.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- the loop --------------------------------------------------------------------------------------

    def _run(self) -> None:
        self._prepare_thread()
        handoff = self._handoff
        if handoff is not None:
            handoff.begin()
        try:
            self._ticks(handoff)
        finally:
            if handoff is not None:
                handoff.end()

    def _prepare_thread(self) -> None:
        """Timer slack, SCHED_FIFO and CPU pinning for the loop thread; a refusal leaves normal scheduling."""
        self.native_id = threading.get_native_id()
        tighten_timer_slack()
        self.realtime_error = set_realtime_priority(self._realtime_priority)
        self.thread_priority = realtime_priority_of()
        if self.realtime_error:
            if self._warn_realtime_refused:
                self.warnings.add("realtime_refused", self.realtime_error)
            log.info("control loop keeps normal scheduling", extra={"reason": self.realtime_error})
        self.affinity_error = pin_thread(self._cpus)
        if self.affinity_error:
            self.warnings.add("loop_cpus_refused", self.affinity_error)
        self._prepared.set()

    def _ticks(self, handoff: GilHandoff | None) -> None:
        clock = time.monotonic_ns
        deadlines = self._deadlines = Deadlines(int(1e9 / self._rate_hz), clock())
        previous_ns: int | None = None
        while not self._stop.is_set():
            due = deadlines.next_ns
            if handoff is not None:
                handoff.before_sleep()
            sleep_until(due)
            woke = clock()
            if handoff is not None:
                handoff.after_wake()
            try:
                self.tick(woke)
            except Exception:
                # A bug in one tick must not stop the loop (the arm would be left following stale targets).
                log.exception("control tick failed")
                self.warnings.add("tick_failed", "a control tick failed; see the daemon log")
                self._fault_to_idle("tick_failed")
            done = clock()
            if previous_ns is not None:
                self.stats.add((woke - previous_ns) / 1e3, (woke - due) / 1e3, (done - woke) / 1e3)
            previous_ns = woke
            if self._new_rate is not None:
                self._rate_hz, self._new_rate = self._new_rate, None
                deadlines.retime(int(1e9 / self._rate_hz), done)
                self.stats.reset()
                previous_ns = None
            else:
                deadlines.advance(done)

    def tick(self, now_ns: int) -> None:
        """One control step at `now_ns` (monotonic)."""
        if self._requested is not None:
            with self._lock:
                self._apply_request(now_ns)
        mode = self._mode
        state = self.arm.latest_state()
        stale = state is None or now_ns - state.t_mono_ns > self._stale_ns
        if stale and mode is not RobotMode.IDLE:
            self._fault(now_ns, "mcu_state_stale", "the MCU stopped reporting state; the arm holds in idle")
            mode = self._mode
        elif mode is not RobotMode.IDLE and state is not None and state.watchdog_hold:
            # The MCU stopped following targets on its own (link silence); a person re-arms by choosing a mode.
            self._fault(
                now_ns, "mcu_watchdog_hold", "the MCU's link watchdog held the arm; choose the mode again"
            )
            mode = self._mode

        recorder = self.recorder
        recording = recorder is not None and recorder.recording
        images: dict[str, bytes] = {}
        new_frames: list[CameraFrame] = []
        for name, camera in self.cameras.items():
            frame = camera.slot.read()
            if frame is None:
                continue
            images[name] = frame.jpeg
            if recording and frame.index != self._last_camera_index.get(name):
                new_frames.append(frame)
            self._last_camera_index[name] = frame.index

        action: np.ndarray | None = None
        origin: ActionOrigin | None = None
        if mode is RobotMode.POLICY and state is not None and self.policy is not None:
            if len(images) == len(self.cameras):
                self.policy.observe(state.positions, images, state.t_mono_ns)
            else:
                self.observations_without_cameras += 1  # a camera has not delivered its first frame yet
            step = self.policy.next_action()
            if self.policy.failed:
                self._fault(now_ns, "inference_failed", "the inference engine gave up; the arm holds in idle")
            elif step.values is not None:
                action, origin = step.values, step.origin
            else:
                self.policy_holds += 1
        elif mode is RobotMode.TELEOP:
            leader = self.arm.latest_leader()
            if leader is None or now_ns - leader.t_mono_ns > self._stale_ns:
                self._fault(now_ns, "leader_stale", "the leader arm stopped reporting; the arm holds in idle")
            else:
                action = leader.positions

        if action is not None:
            self.arm.send_targets(action)
            self._last_target = action
            self.targets_sent += 1
        else:
            self.arm.keepalive()

        # The recorder last: targets leave first, and the writer thread it wakes does not compete with the tick.
        for frame in new_frames:
            if recorder.offer_camera_frame(frame):  # type: ignore[union-attr]
                self.camera_frames_offered += 1
            else:
                self.camera_frames_refused += 1
        if recording and state is not None:
            # A tick without a new target records the target the arm is still moving to (or its position).
            recorded = action if action is not None else self._last_target
            if recorded is None:
                recorded = state.positions
            if recorder.offer_frame(now_ns, state.positions, recorded, self._mode, origin):  # type: ignore[union-attr]
                self.frames_offered += 1
            else:
                self.frames_refused += 1

    # -- mode changes (loop thread, or the caller while the loop is not running) ----------------------------

    def _apply_request(self, now_ns: int) -> None:
        request, self._requested = self._requested, None
        if request is not None:
            self._enter(request[0], request[1], now_ns)
        self._applied.set()

    def _enter(self, mode: RobotMode, reason: str, now_ns: int) -> None:
        changed = mode is not self._mode
        self._mode = mode
        self._last_target = None
        # Every change, and every re-request of the same mode, starts from a standstill.
        self.arm.hold()
        if changed:
            self.history.append(ModeChange(mode, reason, now_ns))
            del self.history[:-50]
            log.info("mode changed", extra={"mode": mode.value, "reason": reason})

    def _fault(self, now_ns: int, code: str, message: str) -> None:
        self.faults += 1
        self.warnings.add(code, message)
        self._enter(RobotMode.IDLE, code, now_ns)

    def _fault_to_idle(self, code: str) -> None:
        try:
            self._fault(time.monotonic_ns(), code, "the control loop hit an error; the arm holds in idle")
        except Exception:
            log.exception("holding the arm after a failed tick failed")
