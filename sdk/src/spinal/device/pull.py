"""Pull finished episodes off a device into a local recordings folder (`spinal device pull`).

Files download in parallel into a staging folder and resume from `.part` files; an episode appears under
DEST/<id> only when every file matches its sha256, so `spinal dataset convert DEST` never sees half of one.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinal.device.client import DeviceClient
from spinal.device.errors import DeviceAuthError, DeviceError, DownloadCancelled
from spinal.device.models import EpisodeSummary

STAGING_DIR = ".spinal-pull"
MARKER_FILE = ".spinal-pull.json"

Progress = Callable[[str, Any], None]


@dataclass
class PullReport:
    """Which episodes arrived, which were already here, which failed (with why), and the bytes moved."""

    dest: Path
    pulled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_offered: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    bytes_fetched: int = 0
    bytes_resumed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dest": str(self.dest),
            "pulled": self.pulled,
            "skipped": self.skipped,
            "not_offered": self.not_offered,
            "failed": self.failed,
            "bytes_fetched": self.bytes_fetched,
            "bytes_resumed": self.bytes_resumed,
        }


def is_already_pulled(dest: Path, episode: EpisodeSummary) -> bool:
    """True when DEST/<id> holds this exact episode (same file names and sha256) from an earlier pull."""
    marker = dest / episode.id / MARKER_FILE
    try:
        recorded = json.loads(marker.read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return False
    wanted = {f.name: f.sha256 for f in episode.files}
    if recorded != wanted:
        return False
    return all((dest / episode.id / f.name).is_file() for f in episode.files)


def pull_episodes(
    client: DeviceClient,
    dest: Path,
    *,
    workers: int = 4,
    only: list[str] | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> PullReport:
    """Download every offered episode (or those in `only`) that DEST does not hold yet.

    `progress(kind, value)` gets ("total_bytes", n), ("bytes", n) and ("episode", id) events.
    Authentication errors are raised; other per-episode failures are reported and the rest continue.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    report = PullReport(dest)
    listed = client.list_episodes()
    if only is not None:
        unknown = sorted(set(only) - {e.id for e in listed})
        for episode_id in unknown:
            report.failed[episode_id] = "the device has no such episode"
        listed = [e for e in listed if e.id in set(only)]
    todo: list[EpisodeSummary] = []
    for episode in listed:
        if not episode.offered or not episode.files:
            report.not_offered[episode.id] = f"status is {episode.status}"
        elif is_already_pulled(dest, episode):
            report.skipped.append(episode.id)
        else:
            todo.append(episode)
    staging = dest / STAGING_DIR
    total = 0
    for episode in todo:
        for f in episode.files:
            part = staging / episode.id / (f.name + ".part")
            total += f.size - (min(part.stat().st_size, f.size) if part.exists() else 0)
    emit = progress or (lambda kind, value: None)
    emit("total_bytes", total)
    lock = threading.Lock()
    remaining = {e.id: len(e.files) for e in todo}
    by_id = {e.id: e for e in todo}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {
            pool.submit(_download_one, client, episode, f, staging / episode.id, emit, cancel): (
                episode.id,
                f.name,
            )
            for episode in todo
            for f in episode.files
        }
        for future in as_completed(futures):
            episode_id, _ = futures[future]
            try:
                result = future.result()
            except DeviceAuthError:
                if cancel is not None:
                    cancel.set()
                raise
            except DownloadCancelled as exc:
                report.failed.setdefault(episode_id, str(exc))
                continue
            except (DeviceError, OSError) as exc:
                report.failed.setdefault(episode_id, str(exc))
                continue
            with lock:
                report.bytes_fetched += result.fetched
                report.bytes_resumed += result.resumed_from
                remaining[episode_id] -= 1
                finished = remaining[episode_id] == 0 and episode_id not in report.failed
            if finished:
                _publish(staging / episode_id, dest / episode_id, by_id[episode_id])
                report.pulled.append(episode_id)
                emit("episode", episode_id)
    if staging.exists() and not any(staging.iterdir()):
        staging.rmdir()
    report.pulled.sort()
    return report


def _download_one(client, episode, file, folder: Path, emit: Progress, cancel):
    folder.mkdir(parents=True, exist_ok=True)
    return client.download(
        episode.id, file, folder / file.name, on_bytes=lambda n: emit("bytes", n), cancel=cancel
    )


def _publish(staged: Path, final: Path, episode: EpisodeSummary) -> None:
    """Move a fully verified episode into place and remember what it was."""
    marker = {
        "episode_id": episode.id,
        "status": episode.status,
        "files": {f.name: f.sha256 for f in episode.files},
    }
    (staged / MARKER_FILE).write_text(json.dumps(marker, indent=1, sort_keys=True) + "\n")
    if final.exists():
        old = final.with_name(f".{final.name}.replaced")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    staged.rename(final)
