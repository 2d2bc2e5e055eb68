"""Pick and load the backend for a model path: `.onnx`, TorchScript, torch.export `.pt2`, or a LeRobot directory.

Used by `PolicyRuntime`; torch and lerobot are imported only when a model needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from spinal_server.backends.base import ModelBackend
from spinal_server.errors import ModelLoadError
from spinal_server.sidecar import PolicySpec

MODEL_FORMATS = ("auto", "onnx", "torchscript", "torch_export", "lerobot")
_SUFFIXES = {
    ".onnx": "onnx",
    ".pt2": "torch_export",
    ".pt": "torchscript",
    ".ts": "torchscript",
    ".jit": "torchscript",
}


def detect_format(path: Path) -> str:
    """The format a model path is in, from its suffix (or `config.json` for a LeRobot directory)."""
    path = Path(path)
    if path.is_dir():
        if (path / "config.json").is_file():
            return "lerobot"
        raise ModelLoadError(f"model directory {path} has no config.json; point model.path at the model file")
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ModelLoadError(
            f"cannot tell the format of {path.name} from its suffix; set model.format to one of "
            f"{', '.join(MODEL_FORMATS[1:])}"
        )
    return fmt


def load_backend(
    path: Path,
    spec: PolicySpec,
    *,
    fmt: str = "auto",
    device: str = "auto",
    dtype: str | None = None,
    threads: int = 0,
    revision: str | None = None,
    example: Callable[[int], dict[str, np.ndarray]] | None = None,
) -> ModelBackend:
    """Load `path` with the backend its format needs; `example(batch)` gives inputs for probing torch models."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model {path} does not exist; check model.path in the manifest")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "onnx":
        from spinal_server.backends.onnx_backend import OnnxBackend

        return OnnxBackend(path, spec, device=device, threads=threads)
    if fmt in ("torchscript", "torch_export"):
        from spinal_server.backends.torch_backend import TorchBackend

        return TorchBackend(path, spec, fmt=fmt, device=device, dtype=dtype, example=example)
    if fmt == "lerobot":
        from spinal_server.backends.lerobot_backend import LeRobotBackend

        return LeRobotBackend(path, spec, device=device, revision=revision)
    raise ModelLoadError(f"model.format {fmt!r} is unknown; use one of {', '.join(MODEL_FORMATS)}")
