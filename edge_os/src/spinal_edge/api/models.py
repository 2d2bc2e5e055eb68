"""The device API's request and response bodies (published in the OpenAPI schema).

Used by the route modules; `spinal record` (issue 11) and the setup page (issue 9) read these shapes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from spinal_edge.cameras.source import CameraStats
from spinal_edge.control.ports import RobotMode


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(BaseModel):
    ok: bool
    version: str
    boot_id: str = Field(description="random per daemon start: a new value means the daemon restarted")
    mode: str
    loop_running: bool


class ModeRequest(_Body):
    mode: RobotMode = Field(description="idle (hold), teleop (leader drives) or policy (inference drives)")


class ModeResponse(BaseModel):
    mode: RobotMode


class TorqueRequest(_Body):
    enabled: bool


class TaskRequest(_Body):
    task: str = Field(max_length=1000, description="the instruction sent with each observation and recorded")


class TaskResponse(BaseModel):
    task: str


class EpisodeStartRequest(_Body):
    task: str | None = Field(
        None, max_length=1000, description="the episode's task; default: the current task"
    )
    max_duration_s: float | None = Field(
        None,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="the device ends the episode itself after this many seconds (kept, stop_reason"
        " `max duration`), so a client that loses its link does not record forever; default: no limit"
        " (besides [recording] max_episode_s)",
    )


class Episode(BaseModel):
    """An episode the recorder is writing or has just finished."""

    episode_id: str
    task: str
    status: str = Field(description="recording, complete, discarded (or recording after a failed close)")
    frames: int
    camera_frames: dict[str, int]
    duration_s: float
    bytes_written: int
    stop_reason: str = Field(
        "",
        description="why it ended: stopped, discarded, disk guard, max duration, max_episode_s reached, daemon"
        " stopping or write error (empty while it records)",
    )
    max_duration_s: float | None = Field(None, description="the limit asked for at start, if any")


class EpisodeStarted(Episode):
    """The episode just started, and whether the policy's server acknowledged the new episode first."""

    engine_reset_acked: bool = Field(
        description="policy mode: the inference server acknowledged the reset (a fresh policy episode) before"
        " recording began; false when it did not answer within 1 s, and in teleop or idle mode"
    )


class EpisodeState(BaseModel):
    recording: bool
    recorder_state: str = Field(description="idle, recording, disk_full or error")
    episode: Episode | None
    last_episode: Episode | None


class EpisodeResetResponse(BaseModel):
    mode: RobotMode
    engine_reset_acked: bool


class Percentiles(BaseModel):
    p50: float
    p99: float
    max: float


class LoopStatus(BaseModel):
    running: bool
    rate_hz: float
    ticks: int
    overruns: int
    faults: int
    targets_sent: int
    policy_holds: int
    period_us: Percentiles | None
    jitter_us: Percentiles | None
    late_us: Percentiles | None
    work_us: Percentiles | None
    realtime_priority: int = 0  # SCHED_FIFO priority of the loop thread (0: normal scheduling)
    daemon_realtime_priority: int = 0  # of the daemon's other threads
    memory_locked: bool = False
    realtime_error: str


class McuStatus(BaseModel):
    connected: bool
    joint_names: list[str]
    has_leader: bool
    state_age_ms: float | None
    positions: list[float] | None
    temperatures_c: list[float] | None
    voltage_v: float | None
    watchdog_hold: bool | None
    torque_enabled: bool | None
    link: dict[str, Any] = Field(description="the MCU driver's counters (frames, errors, firmware, timing)")


class RecorderStatus(BaseModel):
    state: str
    episode: Episode | None
    last_episode: Episode | None
    queue_depth: int
    queue_capacity: int
    refused: int
    rejected: int
    episodes_finished: int
    free_bytes: int | None
    min_free_bytes: int
    last_error: str
    recovered: list[str]


class WarningItem(BaseModel):
    code: str
    message: str
    time: float = Field(description="wall-clock time (UNIX seconds) of the latest occurrence")
    repeats: int


class InferenceStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    engine: str = Field(description="remote, local or none")
    state: str = Field(description="connecting, streaming, degraded, stalled, reconnecting, dead (or off)")
    ready: bool
    failed: bool


class Status(BaseModel):
    version: str
    device_name: str
    boot_id: str = Field(description="random per daemon start: a new value means the daemon restarted")
    uptime_s: float
    mode: RobotMode
    task: str
    inference: InferenceStatus
    loop: LoopStatus
    cameras: dict[str, CameraStats]
    mcu: McuStatus
    recorder: RecorderStatus | None
    warnings: list[WarningItem]


class SettingsView(BaseModel):
    config: dict[str, Any] = Field(description="the configuration in force (edge.toml + saved changes)")
    overlay: dict[str, Any] = Field(description="the saved runtime changes, as a patch over edge.toml")
    overlay_error: str = Field(description="why saved changes were rejected at start-up, or empty")


class ErrorBody(BaseModel):
    error: str = Field(description="the error class, e.g. ModeError")
    detail: str = Field(description="one sentence naming the problem and the fix")
