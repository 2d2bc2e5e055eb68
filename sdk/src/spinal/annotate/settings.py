"""Settings of an annotation run, validated once at the edge (CLI flags or a YAML file) with pydantic.

Used by `spinal annotate`, the pipeline and each module; the rest of the code receives valid values.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

QuestionType = Literal["bbox", "keypoint", "count", "attribute", "spatial"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def fingerprint(self, *extra: str) -> str:
        """A short hash of these settings (and `extra`), so staged output made with other settings is redone."""
        payload = json.dumps([self.model_dump(mode="json"), *extra], sort_keys=True)
        return hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()


class VlmSettings(_Strict):
    """Which backend labels the episodes, and how requests are sent to an OpenAI-compatible endpoint."""

    backend: Literal["openai", "manual", "stub"] = "openai"
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(16, ge=1, le=1024)
    max_retries: int = Field(3, ge=0, le=20)
    timeout_s: float = Field(120.0, gt=0)
    temperature: float = Field(0.2, ge=0, le=2)
    max_tokens: int = Field(512, ge=16)
    labels: Path | None = None


class TaskAugSettings(_Strict):
    enabled: bool = True
    n_rephrasings: int = Field(5, ge=0, le=50)


class SubtaskSettings(_Strict):
    enabled: bool = True
    frames_per_second: float = Field(2.0, gt=0)
    max_frames_per_prompt: int = Field(48, ge=2)
    tiles_per_sheet: int = Field(12, ge=1, le=64)
    emit_memory: bool = True


class InterjectionSettings(_Strict):
    enabled: bool = True
    max_per_episode: int = Field(3, ge=0)
    min_t: float = Field(1.0, ge=0)
    window_s: float = Field(2.0, gt=0)
    frames: int = Field(4, ge=1)


class VqaSettings(_Strict):
    enabled: bool = True
    emission_hz: float = Field(1.0, gt=0)
    cameras: list[str] | None = None
    question_types: list[QuestionType] = ["bbox", "keypoint", "count", "attribute", "spatial"]


class AnnotateSettings(_Strict):
    """Everything one `spinal annotate` run needs."""

    seed: int = 1729
    camera: str | None = None
    episode_parallelism: int | None = Field(None, ge=1)
    vlm: VlmSettings = VlmSettings()
    task_aug: TaskAugSettings = TaskAugSettings()
    subtasks: SubtaskSettings = SubtaskSettings()
    interjections: InterjectionSettings = InterjectionSettings()
    vqa: VqaSettings = VqaSettings()

    def parallel_episodes(self) -> int:
        return self.episode_parallelism or self.vlm.concurrency
