"""spinal-server: a multi-tenant Zenoh inference server for ONNX and torch robot policies."""

__version__ = "0.1.0"
