"""spinal-server: a multi-tenant Zenoh inference server for ONNX and torch robot policies.

Public names are imported lazily, so `from spinal_server import PolicyRuntime` does not start Zenoh machinery.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "PolicyRuntime": "spinal_server.runtime",
    "PolicyServer": "spinal_server.server",
    "Manifest": "spinal_server.manifest",
    "load_manifest": "spinal_server.manifest",
    "PolicySpec": "spinal_server.sidecar",
    "load_sidecar": "spinal_server.sidecar",
    "SessionProcessorState": "spinal_server.processing",
    "ServerError": "spinal_server.errors",
    "ManifestError": "spinal_server.errors",
    "SidecarError": "spinal_server.errors",
    "ModelLoadError": "spinal_server.errors",
    "BackendUnavailable": "spinal_server.errors",
    "ObservationError": "spinal_server.errors",
    "InferenceError": "spinal_server.errors",
    "CaptureError": "spinal_server.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spinal_server' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
