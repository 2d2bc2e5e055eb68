"""The one error tree of the inference server; every failure a person or a client sees is one of these.

Callers catch `ServerError`; each subclass says which part refused and its message names the fix.
"""

from __future__ import annotations


class ServerError(Exception):
    """Something the inference server refused or could not do."""


class ManifestError(ServerError):
    """The server manifest (YAML file, CLI override or extra Zenoh config) is invalid; the message names the field."""


class SidecarError(ServerError):
    """The policy sidecar (`policy.json` next to the model) is missing or invalid; the message names the field."""


class ModelLoadError(ServerError):
    """A model file could not be loaded or does not match its sidecar (inputs, outputs, shapes, revision)."""


class BackendUnavailable(ModelLoadError):
    """The backend a model format needs (torch, lerobot, a GPU execution provider) is not installed."""


class ObservationError(ServerError):
    """An observation does not fit the served policy (missing camera, wrong state size, bad prefix)."""


class InferenceError(ServerError):
    """The model failed during a forward pass or returned a chunk of the wrong shape."""


class CaptureError(ServerError):
    """A capture file is unreadable, or replaying it needs a model the replay was not given."""
