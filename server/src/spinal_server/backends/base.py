"""The model-backend seam: one interface for ONNX Runtime, torch programs and LeRobot checkpoints.

The runtime hands a backend a batch of model-ready arrays and gets one action chunk per sample back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class BackendCapabilities:
    """What a loaded model can do, decided at load time."""

    batchable: bool
    supports_rtc: bool
    chunk_stateless: bool
    device: str
    detail: str = ""


class ModelBackend(ABC):
    """A loaded model: `run` maps a batch of inputs (leading batch axis) to chunks `[batch, horizon, action_dim]`."""

    name: str = "backend"
    capabilities: BackendCapabilities

    @abstractmethod
    def run(self, inputs: Mapping[str, np.ndarray], *, tasks: Sequence[str] | None = None) -> np.ndarray:
        """One forward pass over a batch; returns float32 `[batch, horizon, action_dim]`."""

    def reset(self) -> None:  # noqa: B027 - stateless backends have nothing to reset
        """Clear model-internal episode state (only chunk-stateful models have any)."""

    def close(self) -> None:  # noqa: B027 - most backends free everything on garbage collection
        """Release the model."""
