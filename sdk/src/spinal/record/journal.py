"""The session journal: which device episodes belong to a recording session and what became of each.

Written by `RecordSession` after every change (atomically) into the recordings folder; `--resume` reads it.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from spinal.fsutil import write_json_atomic
from spinal.record.errors import SessionSetupError
from spinal.recording import is_valid_episode_id

JOURNAL_FILE = "session.json"
JOURNAL_VERSION = 1


class EpisodeFate(StrEnum):
    """What the session decided about one device episode."""

    KEPT = "kept"  # part of the dataset
    INTERRUPTED = "interrupted"  # cut short by a fault or Ctrl-C: kept on the device, left out of the dataset


def _device_episode_id(value: str) -> str:
    # The id becomes a folder name under the recordings folder: nothing but a plain device episode id.
    if not is_valid_episode_id(value):
        raise ValueError(f"episode id {value!r} is not a device episode id")
    return value


class JournalEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    number: int = Field(ge=1, description="the session's episode number when it was recorded")
    episode_id: Annotated[str, AfterValidator(_device_episode_id)]
    fate: EpisodeFate
    task: str
    frames: int = Field(0, ge=0)
    duration_s: float = Field(0.0, ge=0)
    note: str = ""


class _JournalFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int
    repo_id: str
    device: str
    entries: list[JournalEntry] = Field(default_factory=list)
    in_progress: JournalEntry | None = None


class SessionJournal:
    """The journal of one session; every mutating call saves it before returning."""

    def __init__(self, path: Path, repo_id: str, device: str) -> None:
        self.path = Path(path)
        self.repo_id = repo_id
        self.device = device
        self.entries: list[JournalEntry] = []
        self.in_progress: JournalEntry | None = None

    @classmethod
    def create(cls, folder: Path, *, repo_id: str, device: str) -> SessionJournal:
        folder.mkdir(parents=True, exist_ok=True)
        journal = cls(folder / JOURNAL_FILE, repo_id, device)
        journal.save()
        return journal

    @classmethod
    def load(cls, folder: Path) -> SessionJournal:
        """Read a journal; a damaged one is refused with the file named."""
        path = folder / JOURNAL_FILE
        try:
            raw = json.loads(path.read_text())
            parsed = _JournalFile.model_validate(raw)
        except FileNotFoundError:
            raise SessionSetupError(
                f"there is no session to resume in {folder} (no {JOURNAL_FILE}); run without --resume"
            ) from None
        except (OSError, ValueError, ValidationError) as exc:
            raise SessionSetupError(
                f"{path} is damaged ({_first_line(exc)}); fix or remove it, or record into a new --out"
            ) from None
        if parsed.version != JOURNAL_VERSION:
            raise SessionSetupError(
                f"{path} has version {parsed.version}; this spinal reads {JOURNAL_VERSION}"
            )
        journal = cls(path, parsed.repo_id, parsed.device)
        journal.entries = parsed.entries
        journal.in_progress = parsed.in_progress
        return journal

    # -- what the session has ------------------------------------------------------------------------

    def kept(self) -> list[JournalEntry]:
        return [e for e in self.entries if e.fate is EpisodeFate.KEPT]

    def interrupted(self) -> list[JournalEntry]:
        return [e for e in self.entries if e.fate is EpisodeFate.INTERRUPTED]

    @property
    def next_number(self) -> int:
        """The number the next episode gets: resumed sessions continue after the kept ones."""
        return len(self.kept()) + 1

    # -- changes ------------------------------------------------------------------------------------------

    def begin(self, episode_id: str, number: int, task: str) -> None:
        self.in_progress = JournalEntry(
            number=number, episode_id=episode_id, fate=EpisodeFate.INTERRUPTED, task=task
        )
        self.save()

    def finish(
        self, episode_id: str, fate: EpisodeFate, *, frames: int = 0, duration_s: float = 0.0, note: str = ""
    ) -> JournalEntry:
        """Record the fate of the episode in progress (or of any episode id the session started)."""
        current = self.in_progress
        base = current if current is not None and current.episode_id == episode_id else None
        entry = JournalEntry(
            number=base.number if base else self.next_number,
            episode_id=episode_id,
            fate=fate,
            task=base.task if base else "",
            frames=max(0, frames),
            duration_s=max(0.0, duration_s),
            note=note,
        )
        self.entries = [e for e in self.entries if e.episode_id != episode_id] + [entry]
        if base is not None:
            self.in_progress = None
        self.save()
        return entry

    def forget(self, episode_id: str) -> None:
        """Drop an episode the person discarded (it no longer exists on the device)."""
        self.entries = [e for e in self.entries if e.episode_id != episode_id]
        if self.in_progress is not None and self.in_progress.episode_id == episode_id:
            self.in_progress = None
        self.save()

    def save(self) -> None:
        payload = _JournalFile(
            version=JOURNAL_VERSION,
            repo_id=self.repo_id,
            device=self.device,
            entries=self.entries,
            in_progress=self.in_progress,
        ).model_dump(mode="json")
        # A crash mid-write leaves the previous journal, never half of a new one.
        write_json_atomic(self.path, payload)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
