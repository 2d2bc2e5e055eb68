"""`DeviceControl`: the calls a recording session makes on a device (mode, episodes, status), typed.

Wraps `spinal.device.DeviceClient`; used by `RecordSession` and its status poller. Device errors keep their
`spinal.device` types, except a refused start: the disk guard's (`DiskFullError`) becomes `DiskGuardError`,
any other recorder failure (`RecorderError`) `RecorderFailure`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from spinal.device import DeviceClient, DeviceResponseError, EpisodeSummary
from spinal.record.errors import DiskGuardError, RecorderFailure
from spinal.record.snapshot import DeviceSnapshot, EpisodeInfo

RECORDER_REFUSED_STATUS = 507  # the device API's answer when recording is impossible
DISK_FULL_ERROR = "DiskFullError"  # ... because of the disk guard (otherwise the error is RecorderError)
CONFLICT_STATUS = 409


@dataclass(frozen=True)
class RecorderView:
    """`GET /api/episode`: whether the device records, and its current and last episode."""

    recording: bool
    recorder_state: str
    episode: EpisodeInfo | None
    last_episode: EpisodeInfo | None


class DeviceControl:
    """One device, as a recording session drives it. Thread-safe (the poller shares it)."""

    def __init__(
        self, client: DeviceClient, *, timeout_s: float = 10.0, status_timeout_s: float = 3.0
    ) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.status_timeout_s = status_timeout_s

    @property
    def url(self) -> str:
        return self.client.base_url

    def status(self) -> DeviceSnapshot:
        taken_at = time.monotonic()
        payload = self.client.call("GET", "/api/status", timeout=self.status_timeout_s)
        if not isinstance(payload, dict):
            raise DeviceResponseError(f"{self.url}/api/status did not return a JSON object")
        return DeviceSnapshot.parse(payload, taken_at)

    def set_mode(self, mode: str) -> str:
        answer = self._call("POST", "/api/mode", {"mode": mode})
        return str(answer.get("mode", "")) if isinstance(answer, dict) else ""

    def hold(self, timeout_s: float | None = None) -> str:
        """Stop whatever drives the arm and keep its position; returns the mode (idle)."""
        answer = self.client.call("POST", "/api/hold", timeout=timeout_s or self.timeout_s)
        return str(answer.get("mode", "")) if isinstance(answer, dict) else ""

    def start_episode(self, task: str, *, max_duration_s: float | None = None) -> EpisodeInfo:
        """Start an episode; with `max_duration_s` the device ends it by itself (stop reason `max duration`)
        if nobody stops it sooner, e.g. because this session lost the link."""
        body: dict[str, Any] = {"task": task}
        if max_duration_s is not None:
            body["max_duration_s"] = max_duration_s
        try:
            answer = self._call("POST", "/api/episode/start", body)
        except DeviceResponseError as exc:
            if exc.status_code == RECORDER_REFUSED_STATUS and exc.error == DISK_FULL_ERROR:
                raise DiskGuardError(error_detail(exc)) from None
            if exc.status_code == RECORDER_REFUSED_STATUS:
                raise RecorderFailure(
                    f"the device's recorder cannot start an episode: {error_detail(exc)}"
                ) from None
            raise
        return _episode(answer, "/api/episode/start")

    def stop_episode(self, timeout_s: float | None = None) -> EpisodeInfo:
        answer = self.client.call("POST", "/api/episode/stop", timeout=timeout_s or self.timeout_s)
        return _episode(answer, "/api/episode/stop")

    def discard_episode(self) -> EpisodeInfo:
        return _episode(self._call("POST", "/api/episode/discard"), "/api/episode/discard")

    def recorder(self) -> RecorderView:
        answer = self._call("GET", "/api/episode")
        body = answer if isinstance(answer, dict) else {}
        return RecorderView(
            recording=body.get("recording") is True,
            recorder_state=str(body.get("recorder_state", "")),
            episode=EpisodeInfo.parse(body.get("episode")),
            last_episode=EpisodeInfo.parse(body.get("last_episode")),
        )

    def stored_episode(self, episode_id: str) -> EpisodeSummary | None:
        """The episode as the device stores it, or None when the device has no such episode."""
        try:
            return self.client.get_episode(episode_id)
        except DeviceResponseError as exc:
            if exc.status_code == 404:
                return None
            raise

    def delete_episode(self, episode_id: str) -> None:
        self.client.delete_episode(episode_id)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.call(method, path, body, timeout=self.timeout_s)


def is_conflict(exc: BaseException) -> bool:
    """True for the device's 409: the mode or the recorder's state does not allow the call now."""
    return isinstance(exc, DeviceResponseError) and exc.status_code == CONFLICT_STATUS


def error_detail(exc: DeviceResponseError) -> str:
    """The device's one-sentence reason, without the URL and status the client's message starts with."""
    return exc.detail or str(exc)


def _episode(answer: Any, path: str) -> EpisodeInfo:
    info = EpisodeInfo.parse(answer)
    if info is None:
        raise DeviceResponseError(f"{path} did not return an episode (no episode_id)")
    return info
