"""The policy sidecar: `policy.json` next to a model, describing what the model eats and returns.

Read by the runtime (canonical pre/post-processing), session validation and `status`; written by model exporters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spinal_server.errors import SidecarError

SIDECAR_NAME = "policy.json"
SIDECAR_FORMAT_VERSION = 1

NormMode = Literal["identity", "mean_std", "min_max"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraSpec(_Strict):
    """The image size the model takes for one camera (frames of any native size are resized to it)."""

    height: int = Field(gt=0, le=4096)
    width: int = Field(gt=0, le=4096)


class ImageSpec(_Strict):
    """How camera pixels become model input: resize, scale, per-channel normalization, layout."""

    resize: Literal["bilinear", "nearest", "none"] = "bilinear"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: Literal["NCHW", "NHWC"] = "NCHW"

    @field_validator("std")
    @classmethod
    def _std_positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s <= 0 for s in value):
            raise ValueError("every image std must be > 0")
        return value


class FeatureStats(_Strict):
    """Normalization of one vector feature (state or action): mode plus the statistics that mode needs."""

    mode: NormMode = "identity"
    mean: list[float] | None = None
    std: list[float] | None = None
    min: list[float] | None = None
    max: list[float] | None = None

    @model_validator(mode="after")
    def _stats_for_mode(self) -> FeatureStats:
        needed = {"mean_std": ("mean", "std"), "min_max": ("min", "max")}.get(self.mode, ())
        for name in needed:
            if getattr(self, name) is None:
                raise ValueError(f"mode {self.mode!r} needs {name!r}")
        if self.mode == "mean_std" and any(s < 0 for s in self.std or ()):
            raise ValueError("std values must be >= 0")
        if self.mode == "min_max" and any(
            hi < lo for lo, hi in zip(self.min or (), self.max or (), strict=False)
        ):
            raise ValueError("every max must be >= its min")
        lengths = {len(v) for v in (self.mean, self.std, self.min, self.max) if v is not None}
        if len(lengths) > 1:
            raise ValueError(f"statistics have different lengths {sorted(lengths)}")
        return self

    def dim(self) -> int | None:
        for v in (self.mean, self.std, self.min, self.max):
            if v is not None:
                return len(v)
        return None


class Normalization(_Strict):
    state: FeatureStats = FeatureStats()
    action: FeatureStats = FeatureStats()


class InputNames(_Strict):
    """The model's input/output tensor names; images default to `observation.images.<camera>`."""

    state: str = "observation.state"
    images: dict[str, str] = Field(default_factory=dict)
    inference_delay: str | None = None
    prefix: str | None = None
    action: str = "action"


class RtcSpec(_Strict):
    """Real-time chunking: the model takes a per-sample delay and a model-space prefix of `execution_horizon` steps."""

    supported: bool = False
    execution_horizon: int = Field(default=10, ge=1, le=10_000)


class PolicySpec(_Strict):
    """Everything the server needs to serve a model canonically; `policy.json` holds exactly these fields."""

    format_version: int = SIDECAR_FORMAT_VERSION
    policy_type: str = "onnx"
    revision: str | None = None
    state_dim: int = Field(ge=0, le=4096)
    action_names: list[str] = Field(min_length=1, max_length=1024)
    chunk_size: int = Field(gt=0, le=10_000)
    fps: float = Field(gt=0, le=10_000)
    cameras: dict[str, CameraSpec] = Field(default_factory=dict)
    image: ImageSpec = ImageSpec()
    normalization: Normalization = Normalization()
    action_mode: Literal["absolute", "relative"] = "absolute"
    relative_exclude: list[str] = Field(default_factory=list)
    names: InputNames = InputNames()
    rtc: RtcSpec = RtcSpec()
    chunk_stateless: bool = True
    batchable: bool | None = None

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    def image_input(self, camera: str) -> str:
        return self.names.images.get(camera, f"observation.images.{camera}")

    @model_validator(mode="after")
    def _consistent(self) -> PolicySpec:
        if self.format_version != SIDECAR_FORMAT_VERSION:
            raise ValueError(
                f"format_version {self.format_version} is not supported (this server reads {SIDECAR_FORMAT_VERSION})"
            )
        if len(set(self.action_names)) != len(self.action_names):
            raise ValueError("action_names has duplicates")
        unknown = set(self.names.images) - set(self.cameras)
        if unknown:
            raise ValueError(f"names.images names cameras not in cameras: {sorted(unknown)}")
        for feature, dim in (("state", self.state_dim), ("action", self.action_dim)):
            stats_dim = getattr(self.normalization, feature).dim()
            if stats_dim is not None and stats_dim != dim:
                raise ValueError(
                    f"normalization.{feature} has {stats_dim} values but the {feature} has {dim}"
                )
        if self.action_mode == "relative":
            if self.state_dim != self.action_dim:
                raise ValueError("action_mode 'relative' needs state_dim equal to the number of action_names")
            missing = set(self.relative_exclude) - set(self.action_names)
            if missing:
                raise ValueError(f"relative_exclude names unknown actions: {sorted(missing)}")
        if self.rtc.supported and not (self.names.inference_delay and self.names.prefix):
            raise ValueError(
                "rtc.supported needs names.inference_delay and names.prefix (the model's RTC inputs)"
            )
        if self.state_dim == 0 and not self.cameras:
            raise ValueError("a policy needs a state (state_dim > 0) or at least one camera")
        return self


def sidecar_path_for(model_path: Path) -> Path:
    """`policy.json` in the model's directory (or inside it, when the model is a directory)."""
    model_path = Path(model_path)
    return (model_path if model_path.is_dir() else model_path.parent) / SIDECAR_NAME


def load_sidecar(path: Path) -> PolicySpec:
    """Read and validate a sidecar file; errors name the file, the field and what to write instead."""
    path = Path(path)
    if not path.is_file():
        raise SidecarError(
            f"policy sidecar {path} is missing; write a {SIDECAR_NAME} next to the model "
            "(state_dim, action_names, chunk_size, fps, cameras, normalization)"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SidecarError(f"policy sidecar {path} is not readable JSON: {exc}") from None
    return parse_sidecar(raw, source=str(path))


def parse_sidecar(raw: object, *, source: str = SIDECAR_NAME) -> PolicySpec:
    if not isinstance(raw, dict):
        raise SidecarError(f"policy sidecar {source} must be a JSON object, got {type(raw).__name__}")
    try:
        return PolicySpec.model_validate(raw)
    except ValidationError as exc:
        raise SidecarError(f"policy sidecar {source} is invalid: {_first_error(exc)}") from None


def write_sidecar(spec: PolicySpec, directory: Path) -> Path:
    path = Path(directory) / SIDECAR_NAME
    path.write_text(json.dumps(spec.model_dump(mode="json", exclude_none=True), indent=2) + "\n")
    return path


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"field {where}: {err['msg']}" + (
        f" ({len(exc.errors())} problems in all)" if len(exc.errors()) > 1 else ""
    )
