"""What the session knows about the device at one instant, read leniently from `GET /api/status`.

Built by `DeviceControl.status()`; the session's decisions and the terminal view read it. The status is
outside input: a field with the wrong type reads as missing, it never crashes the session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EpisodeInfo:
    """An episode as the device's recorder reports it."""

    episode_id: str
    status: str = ""
    task: str = ""
    frames: int = 0
    duration_s: float = 0.0
    stop_reason: str = ""
    #: Only in the answer to a start: the policy's server acknowledged the new episode (None: not said).
    engine_reset_acked: bool | None = None

    @classmethod
    def parse(cls, payload: Any) -> EpisodeInfo | None:
        if not isinstance(payload, dict):
            return None
        episode_id = _str(payload.get("episode_id"))
        if not episode_id:
            return None
        return cls(
            episode_id=episode_id,
            status=_str(payload.get("status")),
            task=_str(payload.get("task")),
            frames=_int(payload.get("frames")) or 0,
            duration_s=_float(payload.get("duration_s")) or 0.0,
            stop_reason=_str(payload.get("stop_reason")),
            engine_reset_acked=_bool(payload.get("engine_reset_acked")),
        )


@dataclass(frozen=True)
class DeviceWarning:
    code: str
    message: str
    time: float | None = None


@dataclass(frozen=True)
class DeviceSnapshot:
    """One status reading; `taken_at` is the session's monotonic clock when the request was sent."""

    taken_at: float
    boot_id: str = ""  # random per daemon start: a new one means the device's daemon restarted
    mode: str = ""
    task: str = ""
    uptime_s: float | None = None
    inference_engine: str = ""
    inference_state: str = ""
    inference_ready: bool = False
    inference_failed: bool = False
    queue_depth: int | None = None
    loop_running: bool = False
    loop_hz: float | None = None  # measured: 1 / median period
    camera_fps: dict[str, float] = field(default_factory=dict)
    recorder_state: str | None = None  # None: recording is off on the device
    episode: EpisodeInfo | None = None
    last_episode: EpisodeInfo | None = None
    free_bytes: int | None = None
    min_free_bytes: int | None = None
    recorder_error: str = ""
    warnings: tuple[DeviceWarning, ...] = ()

    @classmethod
    def parse(cls, payload: Any, taken_at: float) -> DeviceSnapshot:
        status = payload if isinstance(payload, dict) else {}
        inference = _dict(status.get("inference"))
        loop = _dict(status.get("loop"))
        period = _dict(loop.get("period_us"))
        p50 = _float(period.get("p50"))
        cameras = {
            str(name): _float(_dict(cam).get("fps")) or 0.0
            for name, cam in _dict(status.get("cameras")).items()
            if isinstance(cam, dict)
        }
        recorder = status.get("recorder")
        rec = _dict(recorder)
        warnings = tuple(
            DeviceWarning(_str(w.get("code")), _str(w.get("message")), _float(w.get("time")))
            for w in _list(status.get("warnings"))
            if isinstance(w, dict) and _str(w.get("code"))
        )
        return cls(
            taken_at=taken_at,
            boot_id=_str(status.get("boot_id"))[:64],
            mode=_str(status.get("mode")),
            task=_str(status.get("task")),
            uptime_s=_float(status.get("uptime_s")),
            inference_engine=_str(inference.get("engine")),
            inference_state=_str(inference.get("state")),
            inference_ready=inference.get("ready") is True,
            inference_failed=inference.get("failed") is True,
            queue_depth=_int(inference.get("queue_depth")),
            loop_running=loop.get("running") is True,
            loop_hz=1e6 / p50 if p50 and p50 > 0 else None,
            camera_fps=cameras,
            recorder_state=_str(rec.get("state")) or None if isinstance(recorder, dict) else None,
            episode=EpisodeInfo.parse(rec.get("episode")),
            last_episode=EpisodeInfo.parse(rec.get("last_episode")),
            free_bytes=_int(rec.get("free_bytes")),
            min_free_bytes=_int(rec.get("min_free_bytes")),
            recorder_error=_str(rec.get("last_error")),
            warnings=warnings,
        )

    def recording(self, episode_id: str) -> bool:
        """True when the device is recording exactly this episode."""
        return self.episode is not None and self.episode.episode_id == episode_id

    def latest_warning(self) -> DeviceWarning | None:
        timed = [w for w in self.warnings if w.time is not None]
        if timed:
            return max(timed, key=lambda w: w.time or 0.0)
        return self.warnings[0] if self.warnings else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value[:2000] if isinstance(value, str) else ""


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or abs(value) > 2**62:  # NaN or absurd
        return None
    return int(value)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None
