"""The episode part of the device API's contract: what `/api/episodes` answers, validated on both ends.

The edge daemon's router answers with these models; `DeviceClient` validates what arrives (outside input).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spinal.recording import is_valid_episode_id

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class EpisodeFile(BaseModel):
    """One downloadable file of an episode."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    size: int = Field(ge=0)
    sha256: str

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _FILE_NAME.match(value) or ".." in value:
            raise ValueError(f"file name {value!r} is not a plain file name")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return value


class EpisodeSummary(BaseModel):
    """One episode as the device lists it."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: str
    task: str | None = None
    frames: int = 0
    duration_s: float = 0.0
    size_bytes: int = 0
    started_at: str | None = None
    ended_at: str | None = None
    #: Why the device ended the episode (`stopped`, `disk guard`, `max duration`, ...); None when unknown.
    stop_reason: str | None = None
    offered: bool = False
    files: list[EpisodeFile] = Field(default_factory=list)
    error: str | None = None

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not is_valid_episode_id(value):
            raise ValueError(f"episode id {value!r} is not a safe directory name")
        return value


class EpisodeList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    episodes: list[EpisodeSummary]
