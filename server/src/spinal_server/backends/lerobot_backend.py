"""LeRobot checkpoint backend: a local policy directory (`config.json` + weights) run through `lerobot`.

Optional: without `lerobot` importable the loader says so in one sentence; the sidecar is derived from config.json.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spinal_server.backends.base import BackendCapabilities, ModelBackend
from spinal_server.backends.torch_backend import import_torch, resolve_torch_device
from spinal_server.errors import BackendUnavailable, InferenceError, ModelLoadError, SidecarError
from spinal_server.sidecar import SIDECAR_NAME, PolicySpec, parse_sidecar

log = logging.getLogger("spinal_server.backends.lerobot")

# Which policy families may share one instance across sessions (their predict_action_chunk touches no
# instance state), which need the select_action queues (exclusive), and which take RTC arguments.
CHUNK_STATELESS = frozenset({"act", "pi0", "pi05"})
CHUNK_STATEFUL = frozenset({"diffusion"})
NO_CHUNK_API = frozenset({"sac", "sarm", "reward_classifier"})
RTC_CAPABLE = frozenset({"pi0", "pi05", "smolvla"})
_IMAGE_PREFIX = "observation.images."


def spec_from_checkpoint(directory: Path) -> PolicySpec:
    """A sidecar for a LeRobot checkpoint: shapes and chunk size from config.json, the rest from policy.json.

    policy.json must give what config.json lacks: `action_names`, `fps` and the normalization statistics.
    """
    directory = Path(directory)
    config_path = directory / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"LeRobot checkpoint {directory} has no readable config.json: {exc}") from None
    if not isinstance(config, dict) or "type" not in config:
        raise ModelLoadError(f"{config_path} is not a LeRobot policy config (no 'type' field)")
    extra_path = directory / SIDECAR_NAME
    try:
        extra = json.loads(extra_path.read_text(encoding="utf-8")) if extra_path.is_file() else {}
    except (OSError, json.JSONDecodeError) as exc:
        raise SidecarError(f"{extra_path} is not readable JSON: {exc}") from None
    derived: dict[str, Any] = {"policy_type": config["type"], "cameras": {}, "state_dim": 0}
    for key, feature in (config.get("input_features") or {}).items():
        shape = list(feature.get("shape") or [])
        kind = str(feature.get("type", "")).upper()
        if kind == "VISUAL" and key.startswith(_IMAGE_PREFIX) and len(shape) == 3:
            derived["cameras"][key.removeprefix(_IMAGE_PREFIX)] = {"height": shape[1], "width": shape[2]}
        elif kind == "STATE" and len(shape) == 1:
            derived["state_dim"] = shape[0]
    chunk = config.get("chunk_size") or config.get("n_action_steps") or config.get("horizon")
    if chunk:
        derived["chunk_size"] = int(chunk)
    derived["chunk_stateless"] = config["type"] in CHUNK_STATELESS or (
        config["type"] == "smolvla" and int(config.get("n_obs_steps", 1)) == 1
    )
    if config["type"] in RTC_CAPABLE:
        horizon = int((config.get("rtc_config") or {}).get("execution_horizon", 10))
        derived["rtc"] = {"supported": True, "execution_horizon": horizon}
        derived["names"] = {"inference_delay": "inference_delay", "prefix": "prev_chunk_left_over"}
    merged = {**derived, **extra}
    if "action_names" not in merged:
        raise SidecarError(
            f"LeRobot checkpoint {directory} needs a {SIDECAR_NAME} with 'action_names' (in motor order), "
            "'fps' and the normalization statistics; config.json does not carry them"
        )
    return parse_sidecar(merged, source=str(extra_path))


def classify(policy_type: str) -> str:
    """`shared`, `exclusive` or `refused` for a LeRobot policy family."""
    if policy_type in NO_CHUNK_API:
        return "refused"
    if policy_type in CHUNK_STATELESS:
        return "shared"
    return "exclusive"


class LeRobotBackend(ModelBackend):
    """A LeRobot `PreTrainedPolicy` loaded from a local directory, called through `predict_action_chunk`."""

    name = "lerobot"

    def __init__(
        self, directory: Path, spec: PolicySpec, *, device: str = "auto", revision: str | None = None
    ) -> None:
        torch = import_torch()
        try:
            from lerobot.configs.policies import PreTrainedConfig
            from lerobot.policies.factory import get_policy_class
        except ImportError:
            raise BackendUnavailable(
                "model.format 'lerobot' needs the lerobot package, which is not importable; "
                "pip install lerobot on the server, or export the policy to ONNX / torch.export"
            ) from None
        if classify(spec.policy_type) == "refused":
            raise ModelLoadError(
                f"LeRobot policy type {spec.policy_type!r} has no predict_action_chunk to serve"
            )
        self._torch = torch
        self.device = resolve_torch_device(torch, device)
        self._spec = spec
        kwargs = {"revision": revision} if revision and revision != "main" else {}
        try:
            config = PreTrainedConfig.from_pretrained(str(directory), **kwargs)
            config.device = self.device
            policy = get_policy_class(config.type).from_pretrained(str(directory), config=config, **kwargs)
        except Exception as exc:  # lerobot raises many error types for a bad checkpoint
            raise ModelLoadError(f"LeRobot checkpoint {directory} could not be loaded: {exc}") from None
        self._policy = policy.to(self.device).eval()
        self._stateful = not spec.chunk_stateless
        self.capabilities = BackendCapabilities(
            # predict_action_chunk takes one scalar inference_delay, so RTC requests cannot share a batch.
            batchable=spec.chunk_stateless and not spec.rtc.supported,
            supports_rtc=spec.rtc.supported,
            chunk_stateless=spec.chunk_stateless,
            device=self.device,
            detail=f"lerobot {config.type}",
        )

    def run(self, inputs: Mapping[str, np.ndarray], *, tasks: Sequence[str] | None = None) -> np.ndarray:
        torch = self._torch
        spec = self._spec
        batch: dict[str, Any] = {}
        kwargs: dict[str, Any] = {}
        for name, value in inputs.items():
            if spec.rtc.supported and name == spec.names.inference_delay:
                kwargs["inference_delay"] = int(np.max(value))
            elif spec.rtc.supported and name == spec.names.prefix:
                kwargs["prev_chunk_left_over"] = torch.from_numpy(value).to(self.device)
            else:
                batch[name] = torch.from_numpy(np.ascontiguousarray(value)).to(self.device)
        if tasks is not None:
            batch["task"] = list(tasks)
        try:
            with torch.inference_mode():
                if self._stateful and hasattr(self._policy, "_queues"):
                    # Diffusion-family policies read queues that only select_action fills.
                    from lerobot.utils.constants import OBS_IMAGES

                    if spec.cameras:
                        batch[OBS_IMAGES] = torch.stack(
                            [batch[spec.image_input(c)] for c in spec.cameras], dim=-4
                        )
                    self._policy._queues = _populate(self._policy._queues, batch)
                out = self._policy.predict_action_chunk(batch, **kwargs)
        except Exception as exc:  # a policy's forward can raise anything
            raise InferenceError(f"LeRobot predict_action_chunk failed: {exc}") from None
        return out.detach().to("cpu", torch.float32).numpy()

    def reset(self) -> None:
        self._policy.reset()


def _populate(queues: Any, batch: dict[str, Any]) -> Any:
    from lerobot.policies.utils import populate_queues

    return populate_queues(queues, batch)
