"""The daemon's configuration as validated data: the `edge.toml` sections and their defaults.

Loaded by `spinal_edge.config_file`; every other module receives an already-valid `EdgeConfig`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from spinal.robots import SO101_JOINTS

from spinal_edge.network.settings import NetworkSettings
from spinal_edge.web.settings import WebSettings

DEFAULT_CONFIG_PATH = Path("/etc/spinal/edge.toml")
DEFAULT_DATA_DIR = Path("/var/lib/spinal")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

Mode = Literal["idle", "teleop", "policy"]


def _field(default: Any, fix: str, **kwargs: Any) -> Any:
    """A pydantic field carrying the sentence that tells a person how to fix a bad value."""
    return Field(default, json_schema_extra={"fix": fix}, **kwargs)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSettings(_Section):
    """The device's HTTP API and setup page."""

    host: str = _field("0.0.0.0", "set it to an address of this device such as 0.0.0.0 or 127.0.0.1")
    port: int = _field(8080, "set it to a free TCP port between 1 and 65535, such as 8080", ge=1, le=65535)
    token_file: Path | None = _field(
        None, "set it to a file path the daemon can write, or remove it to use <data_dir>/api-token"
    )
    public_metrics: bool = _field(False, "set it to true or false")


class RobotSettings(_Section):
    """The follower arm behind the MCU link, and the optional leader arm on the MCU's second bus."""

    type: Literal["so101_follower"] = _field("so101_follower", 'set it to "so101_follower"')
    mcu_port: str = _field(
        "/dev/ttyACM0", "set it to the MCU's serial device, e.g. /dev/ttyACM0 or /dev/serial/by-id/..."
    )
    baudrate: int = _field(
        1_000_000,
        "set it to the MCU link's baud rate (USB CDC ignores it), e.g. 1000000",
        ge=1200,
        le=12_000_000,
    )
    joint_names: tuple[str, ...] = _field(SO101_JOINTS, "list the joint names in servo-id order")
    leader: bool = _field(False, "set it to true when a leader arm is wired to the MCU")
    torque_on_start: bool = _field(
        True, "set it to true (hold the arm from start-up) or false (limp until asked)"
    )
    leader_bus: int = _field(
        1, "set it to 1 (leader on the MCU's second bus) or 0 (same bus, other ids)", ge=0, le=1
    )
    link_timeout_ms: int = _field(
        200,
        "set it between 20 and 5000 ms (the MCU holds the arm after this much link silence)",
        ge=20,
        le=5000,
    )
    state_stale_ms: int = _field(
        500, "set it between 50 and 10000 ms (older MCU state counts as a link fault)", ge=50, le=10_000
    )
    max_step: int = _field(
        20, "set it between 1 and 4096 (raw ticks a joint may move per MCU loop tick)", ge=1, le=4096
    )
    mcu_rate_hz: int = _field(
        0, "set it to 0 (firmware default) or a servo loop rate up to 1000 Hz", ge=0, le=1000
    )
    use_degrees: bool = _field(
        False, "set it to true for joint values in degrees, false for LeRobot's -100..100"
    )
    calibration_file: Path | None = _field(
        None, "set it to the follower's calibration JSON, or remove it to use <data_dir>/calibration.json"
    )
    leader_calibration_file: Path | None = _field(
        None,
        "set it to the leader's calibration JSON, or remove it to use <data_dir>/leader_calibration.json",
    )

    @field_validator("joint_names")
    @classmethod
    def _joint_names_are_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            raise ValueError("the list is empty")
        if len(set(names)) != len(names):
            raise ValueError("a joint name appears twice")
        for name in names:
            if not _NAME.match(name):
                raise ValueError(f"{name!r} is not a lowercase identifier")
        return names


class LoopSettings(_Section):
    """The control loop and its real-time scheduling (edge_os/docs/realtime.md)."""

    rate_hz: float = _field(30.0, "set it between 1 and 100 (Hz)", ge=1.0, le=100.0)
    realtime_priority: int = _field(
        50, "set it to 0 (normal scheduling) or a SCHED_FIFO priority between 1 and 99", ge=0, le=99
    )
    daemon_realtime_priority: int = _field(
        1,
        "set it to 0 or a SCHED_FIFO priority below realtime_priority (e.g. 1) for the daemon's other threads",
        ge=0,
        le=98,
    )
    lock_memory: bool = _field(True, "set it to true (keep the daemon's memory in RAM) or false")
    cpus: tuple[int, ...] = _field((), "list CPU numbers for the loop thread, e.g. [3], or leave it empty")
    wake_switch_interval_us: int = _field(
        100,
        "set it between 20 and 5000 microseconds, or 0 to leave Python's switch interval alone",
        ge=0,
        le=5000,
    )

    @model_validator(mode="after")
    def _loop_outranks_the_rest(self) -> LoopSettings:
        explicit = "daemon_realtime_priority" in self.model_fields_set or self.realtime_priority
        if (
            explicit
            and self.daemon_realtime_priority
            and self.daemon_realtime_priority >= self.realtime_priority
        ):
            raise ValueError(
                "daemon_realtime_priority must be below realtime_priority (the loop must outrank the other threads);"
                " set realtime_priority higher, e.g. 50"
            )
        if 0 < self.wake_switch_interval_us < 20:
            raise ValueError("wake_switch_interval_us below 20 switches threads more often than it helps")
        if any(cpu < 0 for cpu in self.cpus) or len(set(self.cpus)) != len(self.cpus):
            raise ValueError("cpus must list distinct CPU numbers from 0 up")
        return self

    @property
    def daemon_priority(self) -> int:
        """The daemon threads' priority in effect: none when the loop itself runs under normal scheduling."""
        return self.daemon_realtime_priority if self.realtime_priority else 0

    @property
    def realtime_explicit(self) -> bool:
        """Real-time settings were written in the config: a refusal is then a warning, not just a status field."""
        return bool({"realtime_priority", "daemon_realtime_priority", "lock_memory"} & self.model_fields_set)


class CameraSettings(_Section):
    """One camera; its name in `[cameras.NAME]` becomes `observation.images.NAME`."""

    kind: Literal["uvc", "picamera2", "synthetic"] = _field(
        "uvc", 'set it to "uvc" (USB / V4L2), "picamera2" (Pi camera) or "synthetic" (rendered arm)'
    )
    device: str = _field("/dev/video0", "set it to the V4L2 device, e.g. /dev/video0 or /dev/v4l/by-id/...")
    input_format: str = _field(
        "v4l2", 'set it to "v4l2" for a camera (other FFmpeg demuxers such as "mjpeg" read recorded streams)'
    )
    width: int = _field(640, "set it between 32 and 3840 pixels", ge=32, le=3840)
    height: int = _field(480, "set it between 32 and 2160 pixels", ge=32, le=2160)
    fps: int = _field(30, "set it between 1 and 120", ge=1, le=120)
    jpeg_quality: int = _field(
        85, "set it between 10 and 100 (used where the daemon encodes JPEG)", ge=10, le=100
    )
    view: Literal["front", "side", "top"] = _field(
        "front", 'set it to "front", "side" or "top" (where the synthetic camera looks from)'
    )


class ServerTlsSettings(_Section):
    """mTLS to the inference server's router: PEM files (an empty string means not set)."""

    ca_file: str = _field("", "set it to the CA certificate PEM file, or leave it empty")
    cert_file: str = _field("", "set it to this device's certificate PEM file, or leave it empty")
    key_file: str = _field("", "set it to this device's private-key PEM file, or leave it empty")

    @model_validator(mode="after")
    def _all_or_none(self) -> ServerTlsSettings:
        given = [bool(self.ca_file), bool(self.cert_file), bool(self.key_file)]
        if any(given) and not all(given):
            raise ValueError(
                "mutual TLS needs ca_file, cert_file and key_file together; set all three or none"
            )
        return self


class ServerSettings(_Section):
    """Where the inference server is (written by `spinal image configure` and the setup page)."""

    endpoints: list[str] = _field([], 'list Zenoh endpoints such as ["tcp/192.168.1.10:7447"]')
    tls: ServerTlsSettings = ServerTlsSettings()


class InferenceSettings(BaseModel):
    """What the policy is and where it runs: a remote `spinal-server`, a local model, or nothing.

    Besides the fields here, the section takes the inference client's settings (`model_id`, `revision`,
    `key_root`, timeouts, `fallback`, `rtc` ...; see `spinal_edge.inference.InferenceConfig`), validated by the
    client's own model. `endpoints` and TLS default to `[server]`.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    engine: Literal["auto", "remote", "local", "none"] = _field(
        "auto",
        'set it to "auto" (remote once [server] endpoints and model_id are set), "remote", "local" or "none"',
    )
    task: str = _field("", "set it to the default task sentence sent with each observation", max_length=1000)
    model_path: Path | None = _field(None, "set it to the model manifest for the local engine, or remove it")

    @model_validator(mode="after")
    def _local_needs_a_model(self) -> InferenceSettings:
        if self.engine == "local" and self.model_path is None:
            raise ValueError(
                'engine = "local" needs a model; set model_path to the model file or use engine = "remote"'
            )
        return self


def engine_config_problem(options: dict[str, Any]) -> str:
    """Why the inference client would refuse `options`, or "" (also "" while the client is not installed)."""
    try:
        from spinal_edge.inference import InferenceConfig, InferenceError
    except ImportError:
        return ""
    try:
        InferenceConfig.load(options, source="[inference]")
    except InferenceError as exc:
        return str(exc)
    return ""


class RecordingSettings(_Section):
    """The on-device episode recorder."""

    enabled: bool = _field(True, "set it to true or false")
    min_free_mb: int = _field(
        512, "set it to the free space (MB) below which recording stops, at least 16", ge=16, le=1_000_000
    )
    fsync_interval_s: float = _field(
        1.0, "set it between 0.05 and 1.0 seconds (at most the last second may be lost)", ge=0.05, le=1.0
    )
    queue_frames: int = _field(512, "set it between 16 and 100000 frames", ge=16, le=100_000)
    max_episode_s: float = _field(0.0, "set it to 0 (no limit) or a length in seconds", ge=0.0, le=86_400.0)


class LogSettings(_Section):
    """Logging to stderr (the journal on a device)."""

    level: Literal["debug", "info", "warning", "error"] = _field(
        "info", 'set it to "debug", "info", "warning" or "error"'
    )
    json_lines: bool = _field(True, "set it to true (JSON lines) or false (plain text)")


class EdgeConfig(_Section):
    """The whole `edge.toml`."""

    data_dir: Path = _field(DEFAULT_DATA_DIR, "set it to a writable directory, /var/lib/spinal on a device")
    device_name: str = _field("spinal", "set it to a short name for this robot (letters, digits, - and _)")
    start_mode: Mode = _field("idle", 'set it to "idle", "teleop" or "policy"')
    http: HttpSettings = HttpSettings()
    robot: RobotSettings = RobotSettings()
    loop: LoopSettings = LoopSettings()
    cameras: dict[str, CameraSettings] = _field({}, "name each camera [cameras.NAME] with a lowercase name")
    server: ServerSettings = ServerSettings()
    inference: InferenceSettings = InferenceSettings()
    recording: RecordingSettings = RecordingSettings()
    log: LogSettings = LogSettings()
    web: WebSettings = WebSettings()
    network: NetworkSettings = NetworkSettings()

    @field_validator("device_name")
    @classmethod
    def _device_name_is_short(cls, name: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$", name):
            raise ValueError(f"{name!r} is not a short name of letters, digits, - and _")
        return name

    @field_validator("cameras")
    @classmethod
    def _camera_names_are_names(cls, cameras: dict[str, CameraSettings]) -> dict[str, CameraSettings]:
        for name in cameras:
            if not _NAME.match(name):
                raise ValueError(f"camera name {name!r} is not a lowercase identifier like front or wrist")
        if len(cameras) > 8:
            raise ValueError("more than 8 cameras are configured")
        return cameras

    @model_validator(mode="after")
    def _inference_settings_are_usable(self) -> EdgeConfig:
        if self.engine_kind() != "none":
            problem = engine_config_problem(self.inference_options())
            if problem:
                raise ValueError(problem)
        return self

    def engine_kind(self) -> Literal["remote", "local", "none"]:
        """The engine to build: "auto" is remote once endpoints and a model id are configured."""
        engine = self.inference.engine
        if engine != "auto":
            return engine
        extras = self.inference.model_extra or {}
        endpoints = extras.get("endpoints") or self.server.endpoints
        return "remote" if endpoints and extras.get("model_id") else "none"

    def inference_options(self) -> dict[str, Any]:
        """The inference client's settings: `[inference]` extras, the task, and `[server]` as defaults."""
        options = dict(self.inference.model_extra or {})
        options["task"] = self.inference.task
        if "endpoints" not in options and self.server.endpoints:
            options["endpoints"] = list(self.server.endpoints)
        tls = self.server.tls
        if "tls" not in options and tls.ca_file:
            options["tls"] = {
                "root_ca_certificate": tls.ca_file,
                "connect_certificate": tls.cert_file,
                "connect_private_key": tls.key_file,
            }
        return options

    def token_path(self) -> Path:
        return self.http.token_file or self.data_dir / "api-token"

    def calibration_path(self) -> Path:
        return self.robot.calibration_file or self.data_dir / "calibration.json"

    def leader_calibration_path(self) -> Path:
        return self.robot.leader_calibration_file or self.data_dir / "leader_calibration.json"

    def episodes_dir(self) -> Path:
        return self.data_dir / "episodes"
