"""Canonical pre- and post-processing: decode, resize and normalize observations; unnormalize chunks.

Used by `PolicyRuntime` on the server and in-process by the edge's LocalEngine, so both compute the same bytes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from spinal.protocol import DEFAULT_LIMITS, DecodeLimits, EncodedImage, Observation, ProtocolError

from spinal_server.errors import ObservationError
from spinal_server.sidecar import FeatureStats, PolicySpec

_EPS = 1e-8


@dataclass
class SessionProcessorState:
    """What one session's pipeline remembers between preprocess and postprocess of the same request.

    One instance per session: sharing it between robots would let one robot's state re-anchor another's chunk.
    """

    last_state: np.ndarray | None = None
    episode_id: int = -1
    requests: int = 0
    extras: dict[str, object] = field(default_factory=dict)

    def reset(self) -> None:
        """An episode boundary: nothing cached survives."""
        self.last_state = None
        self.extras.clear()


@dataclass(frozen=True, slots=True)
class ModelInput:
    """One observation as model-ready arrays (no batch axis), plus the raw state the postprocessor needs."""

    arrays: dict[str, np.ndarray]
    raw_state: np.ndarray | None

    @property
    def shape_key(self) -> tuple[tuple[str, tuple[int, ...], str], ...]:
        """Observations with equal keys can share one batched forward."""
        return tuple((k, v.shape, v.dtype.str) for k, v in sorted(self.arrays.items()))


# ---- vectors ------------------------------------------------------------------------------------


def normalize(values: np.ndarray, stats: FeatureStats) -> np.ndarray:
    """Map raw values to model space (float32), LeRobot conventions: mean/std, or min/max to [-1, 1]."""
    x = values.astype(np.float32, copy=False)
    if stats.mode == "mean_std":
        mean = np.asarray(stats.mean, np.float32)
        std = np.asarray(stats.std, np.float32)
        return ((x - mean) / (std + np.float32(_EPS))).astype(np.float32)
    if stats.mode == "min_max":
        lo = np.asarray(stats.min, np.float32)
        hi = np.asarray(stats.max, np.float32)
        return ((x - lo) / (hi - lo + np.float32(_EPS)) * np.float32(2.0) - np.float32(1.0)).astype(
            np.float32
        )
    return x.astype(np.float32, copy=True)


def unnormalize(values: np.ndarray, stats: FeatureStats) -> np.ndarray:
    """Inverse of `normalize`: model space back to robot units (float32)."""
    x = values.astype(np.float32, copy=False)
    if stats.mode == "mean_std":
        mean = np.asarray(stats.mean, np.float32)
        std = np.asarray(stats.std, np.float32)
        return (x * (std + np.float32(_EPS)) + mean).astype(np.float32)
    if stats.mode == "min_max":
        lo = np.asarray(stats.min, np.float32)
        hi = np.asarray(stats.max, np.float32)
        return ((x + np.float32(1.0)) / np.float32(2.0) * (hi - lo + np.float32(_EPS)) + lo).astype(
            np.float32
        )
    return x.astype(np.float32, copy=True)


# ---- images -------------------------------------------------------------------------------------


def resize_image(image: np.ndarray, height: int, width: int, method: str = "bilinear") -> np.ndarray:
    """Resize a HWC uint8 image to (height, width) with half-pixel-centre sampling; float32 output.

    Bilinear first box-filters by whole factors down to within 2x of the target (no aliasing). Pure numpy,
    so the edge and the server resize identically with no image library in the loop.
    """
    src_h, src_w = image.shape[:2]
    if (src_h, src_w) == (height, width) or method == "none":
        return image.astype(np.float32)
    if method == "nearest":
        ys, xs = _nearest_taps(src_h, height), _nearest_taps(src_w, width)
        return image[ys][:, xs].astype(np.float32)
    fy, fx = max(1, src_h // (2 * height)), max(1, src_w // (2 * width))
    img = _box_filter(image, fy, fx) if fy > 1 or fx > 1 else image
    y0, y1, wy = _bilinear_taps(img.shape[0], height)
    x0, x1, wx = _bilinear_taps(img.shape[1], width)
    top = img[y0].astype(np.float32)
    rows = top + (img[y1].astype(np.float32) - top) * wy[:, None, None]
    left = rows[:, x0]
    return left + (rows[:, x1] - left) * wx[None, :, None]


def _box_filter(image: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """Mean over fy x fx blocks, summed in integers (exact), one float32 scale at the end."""
    h, w = image.shape[0] // fy * fy, image.shape[1] // fx * fx
    acc = np.zeros((h // fy, w // fx, image.shape[2]), np.uint32)
    for i in range(fy):
        for j in range(fx):
            acc += image[i:h:fy, j:w:fx]
    return acc.astype(np.float32) * np.float32(1.0 / (fy * fx))


@functools.lru_cache(maxsize=64)
def _nearest_taps(src: int, dst: int) -> np.ndarray:
    return np.minimum(((np.arange(dst) + 0.5) * src / dst).astype(np.int64), src - 1)


@functools.lru_cache(maxsize=64)
def _bilinear_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = np.clip((np.arange(dst, dtype=np.float64) + 0.5) * src / dst - 0.5, 0, src - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, src - 1)
    return lo, hi, (pos - lo).astype(np.float32)


# ---- the pipeline -------------------------------------------------------------------------------


class Preprocessor:
    """Observation -> model inputs, exactly as the sidecar says; shared read-only, state lives per session."""

    def __init__(self, spec: PolicySpec, limits: DecodeLimits = DEFAULT_LIMITS) -> None:
        self.spec = spec
        self.limits = limits
        image = spec.image
        std = np.asarray(image.std, np.float32)
        # (pixel * scale - mean) / std, folded into one multiply and one subtract
        self._gain = (np.float32(image.scale) / std).astype(np.float32)
        self._offset = (np.asarray(image.mean, np.float32) / std).astype(np.float32)

    def __call__(self, obs: Observation, state: SessionProcessorState, *, rtc: bool = False) -> ModelInput:
        spec = self.spec
        arrays: dict[str, np.ndarray] = {}
        raw_state = None
        if spec.state_dim:
            raw_state = self._state(obs)
            arrays[spec.names.state] = normalize(raw_state, spec.normalization.state)
        for camera, cam in spec.cameras.items():
            image = obs.images.get(camera)
            if image is None:
                raise ObservationError(
                    f"observation has no image for camera {camera!r}; send every camera of the policy "
                    f"({', '.join(spec.cameras)})"
                )
            arrays[spec.image_input(camera)] = self._image(camera, image, cam.height, cam.width)
        if spec.rtc.supported:
            delay, prefix = self._rtc_inputs(obs, raw_state) if rtc else self._no_rtc()
            arrays[spec.names.inference_delay] = delay  # type: ignore[index]
            arrays[spec.names.prefix] = prefix  # type: ignore[index]
        state.last_state = raw_state
        state.requests += 1
        return ModelInput(arrays, raw_state)

    def _state(self, obs: Observation) -> np.ndarray:
        if obs.state is None:
            raise ObservationError(
                f"observation has no state; this policy needs {self.spec.state_dim} values"
            )
        raw = np.asarray(obs.state)
        if raw.dtype.kind not in "biuf":
            raise ObservationError(f"observation.state has dtype {raw.dtype}; send float32 values")
        raw = raw.astype(np.float32).reshape(-1)
        if raw.size != self.spec.state_dim:
            raise ObservationError(
                f"observation.state has {raw.size} values but the policy takes {self.spec.state_dim}"
            )
        if not np.all(np.isfinite(raw)):
            raise ObservationError("observation.state holds NaN or infinity; send finite joint values")
        return raw

    def _image(self, camera: str, image: np.ndarray | EncodedImage, height: int, width: int) -> np.ndarray:
        where = f"observation.images[{camera!r}]"
        if isinstance(image, EncodedImage):
            try:
                pixels = image.decode(self.limits, field=where)
            except ProtocolError as exc:
                raise ObservationError(str(exc)) from None
        else:
            pixels = np.asarray(image)
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ObservationError(f"{where} must be uint8 HWC RGB, got {pixels.dtype} {pixels.shape}")
        img = self.spec.image
        out = resize_image(pixels, height, width, img.resize)
        out *= self._gain
        out -= self._offset
        if img.layout == "NCHW":
            out = out.transpose(2, 0, 1)
        return np.ascontiguousarray(out, dtype=np.float32)

    def _no_rtc(self) -> tuple[np.ndarray, np.ndarray]:
        horizon = self.spec.rtc.execution_horizon
        return np.zeros((), np.int64), np.zeros((horizon, self.spec.action_dim), np.float32)

    def _rtc_inputs(self, obs: Observation, raw_state: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        spec = self.spec
        horizon, dim = spec.rtc.execution_horizon, spec.action_dim
        prefix = self._prefix(obs, raw_state)
        if prefix is None:
            return np.zeros((), np.int64), np.zeros((horizon, dim), np.float32)
        out = np.zeros((horizon, dim), np.float32)
        steps = min(horizon, prefix.shape[0])
        out[:steps] = prefix[:steps]
        # A delay longer than the prefix would freeze steps the client has no actions for.
        delay = min(max(0, int(obs.inference_delay_steps)), steps, spec.chunk_size)
        return np.asarray(delay, np.int64), out

    def _prefix(self, obs: Observation, raw_state: np.ndarray | None) -> np.ndarray | None:
        spec = self.spec
        if spec.action_mode == "relative" and obs.prefix_robot is not None and raw_state is not None:
            # Re-anchor: the leftover robot-space actions become deltas from *this* observation's state.
            robot = self._check_prefix(obs.prefix_robot, "prefix_robot")
            return normalize(robot - _relative_offset(spec, raw_state), spec.normalization.action)
        if obs.prefix_model is None:
            return None
        return self._check_prefix(obs.prefix_model, "prefix_model")

    def _check_prefix(self, prefix: np.ndarray, name: str) -> np.ndarray:
        arr = np.asarray(prefix)
        if arr.ndim != 2 or arr.shape[1] != self.spec.action_dim or arr.dtype.kind not in "biuf":
            raise ObservationError(
                f"observation.{name} must be [steps, {self.spec.action_dim}] numbers, got {arr.dtype} {arr.shape}"
            )
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            raise ObservationError(f"observation.{name} holds NaN or infinity")
        return arr


class Postprocessor:
    """Model-space chunk -> robot-space chunk (unnormalize, then re-anchor relative actions on the cached state)."""

    def __init__(self, spec: PolicySpec) -> None:
        self.spec = spec

    def __call__(self, chunk_model: np.ndarray, state: SessionProcessorState) -> np.ndarray:
        robot = unnormalize(chunk_model, self.spec.normalization.action)
        if self.spec.action_mode == "relative":
            if state.last_state is None:
                raise ObservationError("a relative-action chunk needs the state of its observation")
            robot = robot + _relative_offset(self.spec, state.last_state)
        return np.ascontiguousarray(robot, dtype=np.float32)


def _relative_offset(spec: PolicySpec, raw_state: np.ndarray) -> np.ndarray:
    offset = raw_state.astype(np.float32).copy()
    for name in spec.relative_exclude:
        offset[spec.action_names.index(name)] = 0.0
    return offset
