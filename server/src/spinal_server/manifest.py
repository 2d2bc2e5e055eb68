"""The server manifest: one YAML file says which model to serve, how, and where; validated once at start-up.

Every field can be overridden with `--set dotted.field=value`; errors name the file, the field and the fix.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import json5
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from spinal.protocol import (
    DEFAULT_KEY_ROOT,
    KeyExpressionError,
    ServiceKeys,
    sanitize_key_segment,
    validate_root,
)

from spinal_server.errors import ManifestError

SERVING_MODES = ("auto", "shared", "exclusive")
DEFAULT_ROUTER_LISTEN = "tcp/127.0.0.1:7447"
_ENDPOINT_PROTOCOLS = ("tcp", "udp", "tls", "quic", "ws", "unixsock-stream", "serial")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(_Section):
    """Which model file to load and where it runs."""

    path: Path
    format: Literal["auto", "onnx", "torchscript", "torch_export", "lerobot"] = "auto"
    device: str = "auto"
    dtype: str | None = None
    revision: str = "main"
    sidecar: Path | None = None
    threads: int = Field(default=0, ge=0, le=256)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda") and not (value.startswith("cuda:") and value[5:].isdigit()):
            raise ValueError("must be auto, cpu, cuda or cuda:<index>")
        return value


class ServiceSpec(_Section):
    """The Zenoh service name: `<root>/<model_id>/<revision>/<task>`; unset parts come from the model."""

    model_id: str | None = None
    revision: str | None = None
    task: str | None = None
    root: str = DEFAULT_KEY_ROOT


class SchedulerSpec(_Section):
    """`round_robin`: one session per forward; `batch`: up to max_batch sessions per forward."""

    kind: Literal["round_robin", "batch"] = "round_robin"
    max_batch: int = Field(default=8, ge=1, le=1024)
    max_wait_ms: float = Field(default=5.0, ge=0, le=10_000)


class TlsSpec(_Section):
    root_ca_certificate: Path | None = None
    connect_certificate: Path | None = None
    connect_private_key: Path | None = None
    listen_certificate: Path | None = None
    listen_private_key: Path | None = None
    enable_mtls: bool = False

    @model_validator(mode="after")
    def _pairs(self) -> TlsSpec:
        for a, b in (
            ("connect_certificate", "connect_private_key"),
            ("listen_certificate", "listen_private_key"),
        ):
            if (getattr(self, a) is None) != (getattr(self, b) is None):
                raise ValueError(f"{a} and {b} must be set together")
        if self.enable_mtls and self.root_ca_certificate is None:
            raise ValueError("enable_mtls needs root_ca_certificate")
        return self

    def files(self) -> dict[str, Path]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, Path)}


class ZenohSpec(_Section):
    """How this server joins Zenoh: its own router (`router`), a peer, or a client of a zenohd mesh."""

    mode: Literal["router", "peer", "client"] = "router"
    listen: list[str] | None = None  # None: a router listens on tcp/127.0.0.1:7447, others nowhere
    connect: list[str] = Field(default_factory=list)
    tls: TlsSpec = TlsSpec()
    lease_ms: int = Field(default=3000, ge=200, le=600_000)
    drop_wait_us: int = Field(default=5000, ge=0, le=1_000_000)
    multicast_scouting: bool = False
    extra_config: dict[str, Any] | None = None

    @field_validator("listen", "connect")
    @classmethod
    def _endpoints(cls, value: list[str] | None) -> list[str] | None:
        for endpoint in value or []:
            proto, sep, address = endpoint.partition("/")
            if not sep or not address or proto not in _ENDPOINT_PROTOCOLS:
                raise ValueError(
                    f"endpoint {endpoint!r} must look like tcp/<host>:<port> "
                    f"(protocols: {', '.join(_ENDPOINT_PROTOCOLS)})"
                )
        return value

    @field_validator("extra_config", mode="before")
    @classmethod
    def _json5(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json5.loads(value)
            except ValueError as exc:
                raise ValueError(f"is not valid JSON5: {exc}") from None
        if value is not None and not isinstance(value, dict):
            raise ValueError("must be a JSON5 object (a map of Zenoh config keys)")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> ZenohSpec:
        if self.listen is None:
            self.__dict__["listen"] = [DEFAULT_ROUTER_LISTEN] if self.mode == "router" else []
        if self.mode == "client" and not self.connect:
            raise ValueError("mode 'client' needs at least one connect endpoint (the zenohd router)")
        if self.mode in ("router", "peer") and not (self.listen or self.connect or self.multicast_scouting):
            raise ValueError(
                f"mode {self.mode!r} needs a listen or connect endpoint (multicast scouting is off)"
            )
        return self


class HealthSpec(_Section):
    """The HTTP `/healthz` + `/metrics` listener; `port: null` turns it off, 0 picks a free port."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=9100, ge=0, le=65535)


class DebugSpec(_Section):
    """The capture ring: the last `capture_max` request/response pairs, for `spinal-server replay`."""

    capture_dir: Path | None = None
    capture_max: int = Field(default=256, ge=1, le=1_000_000)


class Manifest(_Section):
    """One server process = one model, one service name, one scheduler."""

    model: ModelSpec
    service: ServiceSpec = ServiceSpec()
    default_task: str = ""
    pin_task: bool = False
    serving_mode: Literal["auto", "shared", "exclusive"] = "auto"
    max_sessions: int = Field(default=5, ge=1, le=100_000)
    warmup_inferences: int = Field(default=2, ge=0, le=1000)
    trained_fps: float | None = Field(default=None, gt=0, le=10_000)
    strict_fps: bool = False
    session_idle_timeout_s: float = Field(default=300.0, gt=0)
    liveliness_grace_s: float = Field(default=5.0, ge=0)
    scheduler: SchedulerSpec = SchedulerSpec()
    zenoh: ZenohSpec = ZenohSpec()
    health: HealthSpec = HealthSpec()
    debug: DebugSpec = DebugSpec()

    @model_validator(mode="after")
    def _service_names(self) -> Manifest:
        try:
            self.service_keys()
        except KeyExpressionError as exc:
            raise ValueError(f"service name is not a valid key: {exc}") from None
        return self

    def service_keys(self) -> ServiceKeys:
        """The key expressions this manifest serves under."""
        return ServiceKeys.for_service(
            self.service_model_id(),
            self.service_revision(),
            self.service_task(),
            root=validate_root(self.service.root),
        )

    def service_model_id(self) -> str:
        if self.service.model_id:
            return self.service.model_id
        path = Path(self.model.path)
        return path.name if path.is_dir() or not path.suffix else path.stem

    def service_revision(self) -> str:
        return self.service.revision or self.model.revision

    def service_task(self) -> str:
        if self.service.task:
            return self.service.task
        if self.default_task:
            try:
                return sanitize_key_segment(self.default_task)
            except KeyExpressionError:
                return "default"
        return "default"


def load_manifest(
    path: Path | None, overrides: list[str] | None = None, *, base: dict | None = None
) -> Manifest:
    """Read a YAML manifest (or start from `base`), apply `dotted.key=value` overrides, validate.

    Relative paths in the file resolve against the file's directory.
    """
    source = str(path) if path else "command line"
    raw: dict[str, Any] = copy.deepcopy(base) if base else {}
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ManifestError(f"manifest {path} cannot be read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ManifestError(f"manifest {path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ManifestError(f"manifest {path} must be a YAML mapping, got {type(loaded).__name__}")
        _resolve_paths(loaded, path.parent)
        raw = deep_merge(raw, loaded)
    for item in overrides or []:
        key, value = parse_override(item)
        _set_dotted(raw, key, value, source=item)
    return validate_manifest(raw, source=source)


def validate_manifest(raw: dict[str, Any], *, source: str = "manifest") -> Manifest:
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" ({len(exc.errors())} problems in all)" if len(exc.errors()) > 1 else ""
        hint = " (a required field)" if err["type"] == "missing" else ""
        raise ManifestError(
            f"{source}: field {where}{hint}: {err['msg']}{more}; fix it in the file or with --set {where}=..."
        ) from None


def parse_override(item: str) -> tuple[str, Any]:
    """`scheduler.max_batch=16` -> ("scheduler.max_batch", 16); the value is read as YAML (lists, numbers...)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ManifestError(f"override {item!r} must look like dotted.field=value, e.g. scheduler.kind=batch")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key, value


def _set_dotted(raw: dict[str, Any], key: str, value: Any, *, source: str) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ManifestError(f"override {source!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """`b` over `a`, map by map (used for manifests and Zenoh configs)."""
    out = dict(a)
    for key, value in b.items():
        out[key] = (
            deep_merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    def fix(section: Any, key: str) -> None:
        if isinstance(section, dict) and isinstance(section.get(key), str) and section[key]:
            p = Path(section[key]).expanduser()
            section[key] = str(p if p.is_absolute() else (base / p))

    model = raw.get("model")
    fix(model, "path")
    fix(model, "sidecar")
    fix(raw.get("debug"), "capture_dir")
    tls = (raw.get("zenoh") or {}).get("tls") if isinstance(raw.get("zenoh"), dict) else None
    for key in TlsSpec.model_fields:
        if key != "enable_mtls":
            fix(tls, key)
