"""Per-episode, per-module scratch files (`.annotate_staging/episode_000042/<module>.jsonl`).

Each file is written atomically with a header naming the settings fingerprint it was made with, so a rerun
skips what is already done (resume), redoes what was made with other settings, and shards merge by copying.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinal.annotate.errors import StagingError
from spinal.fsutil import write_bytes_atomic

STAGING_DIRNAME = ".annotate_staging"
_EPISODE_RE = re.compile(r"^episode_(\d{6,})$")
FORMAT = "spinal-annotate-staging/1"


@dataclass(frozen=True)
class StagedModule:
    """One module's rows for one episode and the fingerprint of the settings that made them."""

    module: str
    episode: int
    fingerprint: str
    rows: list[dict[str, Any]]


@dataclass
class MergeReport:
    copied: list[str] = field(default_factory=list)
    identical: list[str] = field(default_factory=list)


class Staging:
    """The staging folder of one dataset (or of one shard's run)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, episode: int, module: str) -> Path:
        return self.root / f"episode_{episode:06d}" / f"{module}.jsonl"

    def write(self, episode: int, module: str, rows: list[dict[str, Any]], fingerprint: str) -> None:
        header = {
            "format": FORMAT,
            "module": module,
            "episode": episode,
            "fingerprint": fingerprint,
            "rows": len(rows),
        }
        lines = [json.dumps(header, sort_keys=True)] + [json.dumps(r, sort_keys=True) for r in rows]
        write_bytes_atomic(self.path(episode, module), ("\n".join(lines) + "\n").encode(), make_parents=True)

    def read(self, episode: int, module: str) -> StagedModule | None:
        path = self.path(episode, module)
        if not path.is_file():
            return None
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0])
            rows = [json.loads(line) for line in lines[1:] if line.strip()]
        except (ValueError, IndexError, UnicodeDecodeError):
            raise StagingError(
                f"Staged file {path} is corrupt; delete it and rerun to redo that module."
            ) from None
        if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("rows") != len(rows):
            raise StagingError(f"Staged file {path} has a bad header or row count; delete it and rerun.")
        if not all(isinstance(r, dict) for r in rows):
            raise StagingError(f"Staged file {path} holds a row that is not an object; delete it and rerun.")
        return StagedModule(
            module=module, episode=episode, fingerprint=str(header.get("fingerprint")), rows=rows
        )

    def is_current(self, episode: int, module: str, fingerprint: str) -> bool:
        staged = self.read(episode, module)
        return staged is not None and staged.fingerprint == fingerprint

    def episodes(self) -> list[int]:
        if not self.root.is_dir():
            return []
        found = [_EPISODE_RE.match(p.name) for p in self.root.iterdir() if p.is_dir()]
        return sorted(int(m.group(1)) for m in found if m)

    def modules(self, episode: int) -> list[str]:
        folder = self.root / f"episode_{episode:06d}"
        return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []

    def remove_stale_temp_files(self) -> int:
        """Delete temporary files a killed run left behind (finished files are never temporary); returns how many."""
        if not self.root.is_dir():
            return 0
        stale = list(self.root.glob("episode_*/.*.tmp"))
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def merge_from(self, other: Staging) -> MergeReport:
        """Copy another run's staged files in; the same file twice is a no-op, a different one is an error."""
        if not other.root.is_dir():
            raise StagingError(f"Shard staging folder {other.root} does not exist.")
        report = MergeReport()
        for episode in other.episodes():
            for module in other.modules(episode):
                src, dst = other.path(episode, module), self.path(episode, module)
                other.read(episode, module)  # refuses corrupt files before anything is copied
                name = f"episode {episode} {module}"
                if dst.is_file():
                    if dst.read_bytes() == src.read_bytes():
                        report.identical.append(name)
                        continue
                    raise StagingError(
                        f"Merging {other.root}: {name} differs from what is already staged in {self.root}; "
                        "delete one of them (the shards overlapped or were run with different settings)."
                    )
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_suffix(".jsonl.merging")
                shutil.copyfile(src, tmp)
                tmp.replace(dst)
                report.copied.append(name)
        return report
