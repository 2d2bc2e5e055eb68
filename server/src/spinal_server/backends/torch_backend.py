"""torch backends: TorchScript modules (`torch.jit.save`) and torch.export programs (`torch.export.save`).

Both take one `dict[str, Tensor]` keyed by the sidecar's input names and return `[batch, horizon, action_dim]`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spinal_server.backends.base import BackendCapabilities, ModelBackend
from spinal_server.errors import BackendUnavailable, InferenceError, ModelLoadError
from spinal_server.sidecar import PolicySpec

log = logging.getLogger("spinal_server.backends.torch")

TORCH_FORMATS = ("torchscript", "torch_export")


def import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise BackendUnavailable(
            "this model needs torch, which is not installed; pip install 'spinal-server[torch]' "
            "or export the policy to ONNX"
        ) from None
    return torch


def resolve_torch_device(torch: Any, device: str) -> str:
    """`cuda` when asked for (or `auto`) and present, else `cpu` with a log line saying so."""
    if device.startswith("cuda") or device == "auto":
        if torch.cuda.is_available():
            return device if device.startswith("cuda") else "cuda"
        if device != "auto":
            log.warning("model.device=%s but torch sees no CUDA device; running on CPU", device)
    return "cpu"


class TorchBackend(ModelBackend):
    """A TorchScript or torch.export program, run under `torch.inference_mode`."""

    def __init__(
        self,
        path: Path,
        spec: PolicySpec,
        *,
        fmt: str,
        device: str = "auto",
        dtype: str | None = None,
        example: Callable[[int], dict[str, np.ndarray]] | None = None,
    ) -> None:
        torch = import_torch()
        self._torch = torch
        self.path = Path(path)
        self.name = fmt
        self.device = resolve_torch_device(torch, device)
        self._dtype = _torch_dtype(torch, dtype)
        try:
            if fmt == "torchscript":
                with warnings.catch_warnings():
                    warnings.simplefilter(
                        "ignore", DeprecationWarning
                    )  # still supported; export is the successor
                    module = torch.jit.load(str(self.path), map_location=self.device)
                module.eval()
                if self._dtype is not None:
                    module = module.to(self._dtype)
                self._fn = module
            elif fmt == "torch_export":
                program = torch.export.load(str(self.path))
                module = program.module()
                if self.device != "cpu":
                    module = module.to(self.device)
                self._fn = module
            else:
                raise ModelLoadError(f"unknown torch format {fmt!r}; expected one of {TORCH_FORMATS}")
        except ModelLoadError:
            raise
        except Exception as exc:  # torch raises many error types for a bad file
            raise ModelLoadError(f"{fmt} model {self.path} could not be loaded: {exc}") from None
        log.info("%s model %s runs on %s", fmt, self.path.name, self.device)
        batchable = False
        if example is not None and spec.batchable is not False:
            batchable = self._probe_batch(example)
        if spec.batchable and not batchable:
            raise ModelLoadError(
                f"policy.json says batchable but {self.path.name} does not accept a batch of 2; "
                "export it with a dynamic batch dimension or drop 'batchable'"
            )
        self.capabilities = BackendCapabilities(
            batchable=batchable,
            supports_rtc=spec.rtc.supported,
            chunk_stateless=spec.chunk_stateless,
            device=self.device,
            detail=f"torch {torch.__version__} {fmt}",
        )

    def _probe_batch(self, example: Callable[[int], dict[str, np.ndarray]]) -> bool:
        """A batch of two equal samples must give two rows equal to the single-sample answer."""
        single = example(1)
        try:
            one = self.run(single)
            two = self.run({k: np.concatenate([v, v]) for k, v in single.items()})
        except InferenceError as exc:
            log.info("%s takes no batch of 2 (%s); serving one observation per forward", self.path.name, exc)
            return False
        return (
            two.shape[0] == 2
            and np.allclose(two[0], one[0], atol=1e-5)
            and np.allclose(two[1], one[0], atol=1e-5)
        )

    def run(self, inputs: Mapping[str, np.ndarray], *, tasks: Sequence[str] | None = None) -> np.ndarray:
        torch = self._torch
        batch = {}
        for name, value in inputs.items():
            tensor = torch.from_numpy(np.ascontiguousarray(value)).to(self.device)
            if self._dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(self._dtype)
            batch[name] = tensor
        try:
            with torch.inference_mode():
                out = self._fn(batch)
        except Exception as exc:  # a model's forward can raise anything
            raise InferenceError(f"{self.name} forward failed: {exc}") from None
        if not isinstance(out, torch.Tensor):
            raise InferenceError(
                f"{self.name} model returned {type(out).__name__}; it must return one tensor"
            )
        return out.detach().to("cpu", torch.float32).numpy()


def _torch_dtype(torch: Any, dtype: str | None) -> Any:
    if dtype in (None, "", "float32"):
        return None
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise ModelLoadError(f"model.dtype {dtype!r} is not a torch dtype (try float32, float16, bfloat16)")
    return value
