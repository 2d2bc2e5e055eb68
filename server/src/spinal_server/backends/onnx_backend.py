"""ONNX Runtime backend: TensorRT / CUDA execution providers when present, CPU otherwise.

Detects a dynamic batch axis from the graph so the micro-batching scheduler knows it may batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from spinal_server.backends.base import BackendCapabilities, ModelBackend
from spinal_server.errors import BackendUnavailable, InferenceError, ModelLoadError
from spinal_server.sidecar import PolicySpec

log = logging.getLogger("spinal_server.backends.onnx")

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(uint8)": np.uint8,
}
_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def choose_providers(device: str, available: list[str]) -> list[str]:
    """Execution providers for a manifest device: GPU ones that are installed (TensorRT first), then CPU."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    gpu = [p for p in _GPU_PROVIDERS if p in available]
    return [*gpu, "CPUExecutionProvider"]


class OnnxBackend(ModelBackend):
    """An `.onnx` file run by ONNX Runtime; inputs are fed by the names the sidecar gives."""

    name = "onnx"

    def __init__(self, path: Path, spec: PolicySpec, *, device: str = "auto", threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - a declared dependency
            raise BackendUnavailable("the ONNX backend needs onnxruntime; pip install onnxruntime") from None
        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        providers = choose_providers(device, ort.get_available_providers())
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"ONNX model {self.path} could not be loaded: {exc}") from None
        used = self._session.get_providers()
        if device not in ("cpu", "auto") and not any(p in used for p in _GPU_PROVIDERS):
            log.warning(
                "model.device=%s asked for a GPU but no GPU execution provider is present; using CPU", device
            )
        log.info("ONNX model %s runs on %s", self.path.name, ", ".join(used))
        self._inputs = {i.name: i for i in self._session.get_inputs()}
        self._output = _pick_output(self._session, spec, self.path)
        self._check_inputs(spec)
        batchable = _dynamic_batch(self._session) if spec.batchable is not False else False
        if spec.batchable and not batchable:
            raise ModelLoadError(
                f"policy.json says batchable but {self.path.name} has a fixed batch axis; re-export it with a "
                "dynamic first dimension or drop 'batchable'"
            )
        self.capabilities = BackendCapabilities(
            batchable=batchable,
            supports_rtc=spec.rtc.supported,
            chunk_stateless=True,  # an ONNX graph is a pure function of its inputs
            device="cuda" if any(p in used for p in _GPU_PROVIDERS) else "cpu",
            detail=", ".join(used),
        )

    def _check_inputs(self, spec: PolicySpec) -> None:
        expected: set[str] = set()
        if spec.state_dim:
            expected.add(spec.names.state)
        expected |= {spec.image_input(c) for c in spec.cameras}
        if spec.rtc.supported:
            expected |= {spec.names.inference_delay or "", spec.names.prefix or ""}
        missing = set(self._inputs) - expected
        if missing:
            raise ModelLoadError(
                f"ONNX model {self.path.name} has inputs {sorted(missing)} that policy.json does not feed; "
                f"name them in policy.json 'names' (the server feeds {sorted(expected)})"
            )
        unused = expected - set(self._inputs)
        if unused:
            raise ModelLoadError(
                f"policy.json feeds {sorted(unused)} but ONNX model {self.path.name} has no such inputs "
                f"(it has {sorted(self._inputs)})"
            )

    def run(self, inputs: Mapping[str, np.ndarray], *, tasks: Sequence[str] | None = None) -> np.ndarray:
        feeds = {}
        for name, meta in self._inputs.items():
            dtype = _ORT_DTYPES.get(meta.type)
            value = inputs[name]
            feeds[name] = value if dtype is None or value.dtype == dtype else value.astype(dtype)
        try:
            (out,) = self._session.run([self._output], feeds)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise InferenceError(f"ONNX forward failed: {exc}") from None
        return np.asarray(out, dtype=np.float32)


def _pick_output(session, spec: PolicySpec, path: Path) -> str:
    names = [o.name for o in session.get_outputs()]
    if spec.names.action in names:
        return spec.names.action
    if len(names) == 1:
        return names[0]
    raise ModelLoadError(
        f"ONNX model {path.name} has outputs {names}; set policy.json names.action to the action-chunk output"
    )


def _dynamic_batch(session) -> bool:
    """True when every input and the outputs have a symbolic (or unknown) first dimension."""
    for arg in [*session.get_inputs(), *session.get_outputs()]:
        shape = arg.shape
        if not shape:
            return False
        first = shape[0]
        if isinstance(first, int) and first > 0:
            return False
    return True
