"""Model backends (ONNX Runtime, torch, LeRobot) behind `ModelBackend`, and `load_backend` to pick one."""

from spinal_server.backends.base import BackendCapabilities, ModelBackend
from spinal_server.backends.loader import MODEL_FORMATS, detect_format, load_backend

__all__ = ["MODEL_FORMATS", "BackendCapabilities", "ModelBackend", "detect_format", "load_backend"]
