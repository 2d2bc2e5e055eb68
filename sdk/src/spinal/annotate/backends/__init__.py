"""Labelling backends: an OpenAI-compatible VLM endpoint, human labels (manual), and a deterministic stub.

`make_backend(settings)` builds the one the settings name; the pipeline only sees the `LabelBackend` protocol.
"""

from __future__ import annotations

from spinal.annotate.backends.base import LabelBackend, LabelRequest
from spinal.annotate.backends.manual import ManualBackend, load_labels
from spinal.annotate.backends.stub import StubBackend, stub_answer
from spinal.annotate.errors import SettingsError
from spinal.annotate.settings import VlmSettings


def make_backend(vlm: VlmSettings) -> LabelBackend:
    """The backend `vlm.backend` names, configured from the settings."""
    if vlm.backend == "stub":
        return StubBackend()
    if vlm.backend == "manual":
        if vlm.labels is None:
            raise SettingsError("The manual backend needs a label file: pass --labels FILE.yaml or FILE.csv.")
        return ManualBackend.from_file(vlm.labels)
    from spinal.annotate.backends.openai_compat import OpenAICompatibleBackend

    return OpenAICompatibleBackend(
        base_url=vlm.base_url,
        model=vlm.model,
        api_key_env=vlm.api_key_env,
        concurrency=vlm.concurrency,
        max_retries=vlm.max_retries,
        timeout_s=vlm.timeout_s,
        temperature=vlm.temperature,
        max_tokens=vlm.max_tokens,
    )


__all__ = [
    "LabelBackend",
    "LabelRequest",
    "ManualBackend",
    "StubBackend",
    "load_labels",
    "make_backend",
    "stub_answer",
]
