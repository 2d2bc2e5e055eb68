"""The device API for recorded episodes: list, describe, download (HTTP ranges, sha256) and delete.

`episodes_router(recordings_root, auth)` builds the FastAPI router the spinal-edge app mounts; the SDK's
`spinal device episodes|pull` talk to it. Episodes still being recorded are listed but never offered.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from spinal.recording import (
    METADATA_FILE,
    EpisodeMetadata,
    EpisodeStatus,
    RecordingError,
    is_valid_episode_id,
    load_metadata,
)

CHECKSUMS_FILE = ".checksums.json"
CHUNK_BYTES = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: Episodes in these states are finished on disk and may be pulled.
OFFERED = frozenset({EpisodeStatus.COMPLETE, EpisodeStatus.RECOVERED})


class EpisodeFile(BaseModel):
    name: str
    size: int
    sha256: str


class EpisodeSummary(BaseModel):
    id: str
    status: str
    task: str | None = None
    frames: int = 0
    duration_s: float = 0.0
    size_bytes: int = 0
    started_at: str | None = None
    ended_at: str | None = None
    offered: bool = False
    files: list[EpisodeFile] = []
    error: str | None = None


class EpisodeList(BaseModel):
    episodes: list[EpisodeSummary]


class EpisodeDetail(EpisodeSummary):
    metadata: dict[str, Any] | None = None


class ChecksumCache:
    """sha256 of episode files, kept in memory and in a `.checksums.json` per episode (hash once, list fast).

    An entry is valid while the file's size, mtime and inode are unchanged.
    """

    def __init__(self) -> None:
        self._memory: dict[str, tuple[tuple[int, int, int], str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def sha256(self, path: Path, st: os.stat_result) -> str:
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        hit = self._memory.get(str(path))
        if hit and hit[0] == key:
            return hit[1]
        with self._lock_for(path.parent):
            stored = self._load_sidecar(path.parent).get(path.name)
            if stored and (stored.get("size"), stored.get("mtime_ns"), stored.get("ino")) == key:
                digest = str(stored["sha256"])
            else:
                digest = _hash_file(path)
                sidecar = self._load_sidecar(path.parent)
                sidecar[path.name] = {"size": key[0], "mtime_ns": key[1], "ino": key[2], "sha256": digest}
                self._save_sidecar(path.parent, sidecar)
        self._memory[str(path)] = (key, digest)
        return digest

    def forget(self, episode_dir: Path) -> None:
        prefix = str(episode_dir) + os.sep
        for name in [k for k in self._memory if k.startswith(prefix)]:
            del self._memory[name]

    def _lock_for(self, episode_dir: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(str(episode_dir), threading.Lock())

    @staticmethod
    def _load_sidecar(episode_dir: Path) -> dict[str, Any]:
        try:
            payload = json.loads((episode_dir / CHECKSUMS_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return payload if isinstance(payload, dict) else {}

    @staticmethod
    def _save_sidecar(episode_dir: Path, payload: dict[str, Any]) -> None:
        tmp = episode_dir / f"{CHECKSUMS_FILE}.tmp"
        try:
            tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
            os.replace(tmp, episode_dir / CHECKSUMS_FILE)
        except OSError:
            tmp.unlink(missing_ok=True)  # a read-only disk only costs a re-hash later


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Episodes:
    """Looks episodes up under the recordings root without ever leaving it."""

    def __init__(self, root: Path, checksums: ChecksumCache) -> None:
        self.root = Path(root)
        self.checksums = checksums

    def directory(self, episode_id: str) -> Path:
        if not is_valid_episode_id(episode_id):
            raise HTTPException(404, f"episode {episode_id!r} does not exist")
        path = self.root / episode_id
        if path.is_symlink() or not path.is_dir() or not (path / METADATA_FILE).is_file():
            raise HTTPException(404, f"episode {episode_id!r} does not exist")
        return path

    def all_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if is_valid_episode_id(p.name)
            and p.is_dir()
            and not p.is_symlink()
            and (p / METADATA_FILE).is_file()
        )

    def summary(self, episode_id: str, *, with_metadata: bool = False) -> EpisodeDetail:
        path = self.directory(episode_id)
        try:
            meta = load_metadata(path)
        except RecordingError as exc:
            return EpisodeDetail(id=episode_id, status="unreadable", error=str(exc))
        offered = meta.status in OFFERED
        files = self.files(path, meta) if offered else []
        size = sum(f.size for f in files) if offered else _dir_size(path)
        return EpisodeDetail(
            id=episode_id,
            status=meta.status.value,
            task=meta.task,
            frames=meta.frame_count,
            duration_s=meta.duration_s,
            size_bytes=size,
            started_at=meta.started_at or None,
            ended_at=meta.ended_at,
            offered=offered,
            files=files,
            metadata=meta.to_json_dict() if with_metadata else None,
        )

    def files(self, path: Path, meta: EpisodeMetadata) -> list[EpisodeFile]:
        out = []
        for name in meta.file_names():
            file_path = path / name
            try:
                st = file_path.lstat()
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            out.append(EpisodeFile(name=name, size=st.st_size, sha256=self.checksums.sha256(file_path, st)))
        return out


def _dir_size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.iterdir() if p.is_file() and not p.is_symlink())


def episodes_router(
    recordings_root: Path, auth: Callable[..., Any], *, checksums: ChecksumCache | None = None
) -> APIRouter:
    """The `/api/episodes` routes over `recordings_root`, every route guarded by the `auth` dependency."""
    episodes = _Episodes(Path(recordings_root), checksums or ChecksumCache())
    router = APIRouter(prefix="/api/episodes", tags=["episodes"], dependencies=[Depends(auth)])

    @router.get("", response_model=EpisodeList, summary="List recorded episodes")
    def list_episodes() -> EpisodeList:
        items = []
        for episode_id in episodes.all_ids():
            try:
                items.append(EpisodeSummary(**episodes.summary(episode_id).model_dump(exclude={"metadata"})))
            except HTTPException:
                continue  # deleted while listing
        return EpisodeList(episodes=items)

    @router.get("/{episode_id}", response_model=EpisodeDetail, summary="Describe one episode")
    def get_episode(episode_id: str) -> EpisodeDetail:
        return episodes.summary(episode_id, with_metadata=True)

    @router.api_route(
        "/{episode_id}/files/{name}",
        methods=["GET", "HEAD"],
        summary="Download one file of an episode (supports Range; ETag is the sha256)",
        response_class=Response,
    )
    def download(episode_id: str, name: str, request: Request) -> Response:
        path = episodes.directory(episode_id)
        try:
            meta = load_metadata(path)
        except RecordingError as exc:
            raise HTTPException(409, f"episode {episode_id} cannot be served: {exc}") from None
        if meta.status not in OFFERED:
            raise HTTPException(
                409,
                f"episode {episode_id} is {meta.status.value}; only complete or recovered episodes download",
            )
        if name not in meta.file_names():
            raise HTTPException(404, f"episode {episode_id} has no file {name!r}")
        file_path = path / name
        try:
            st = file_path.lstat()
        except FileNotFoundError:
            raise HTTPException(404, f"episode {episode_id} has no file {name!r}") from None
        if not stat.S_ISREG(st.st_mode):
            raise HTTPException(404, f"episode {episode_id} has no file {name!r}")
        digest = episodes.checksums.sha256(file_path, st)
        size = st.st_size
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": f'"{digest}"',
            "X-Checksum-SHA256": digest,
            "Content-Type": "application/octet-stream",
        }
        start, end = 0, size - 1
        status = 200
        requested = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if requested and (if_range is None or if_range.strip() == f'"{digest}"'):
            parsed = _parse_range(requested, size)
            if parsed == "unsatisfiable":
                headers["Content-Range"] = f"bytes */{size}"
                return Response(status_code=416, headers=headers)
            if parsed is not None:
                start, end = parsed
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        return StreamingResponse(_read_range(file_path, start, length), status_code=status, headers=headers)

    @router.delete("/{episode_id}", status_code=204, summary="Delete an episode from the device")
    def delete_episode(episode_id: str) -> Response:
        path = episodes.directory(episode_id)
        try:
            status = load_metadata(path).status
        except RecordingError:
            status = None
        if status == EpisodeStatus.RECORDING:
            raise HTTPException(409, f"episode {episode_id} is being recorded; stop it before deleting")
        shutil.rmtree(path)
        episodes.checksums.forget(path)
        return Response(status_code=204)

    return router


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive for one byte range; "unsatisfiable"; or None to ignore the header (RFC 9110)."""
    match = _RANGE.match(header.strip())
    if not match:
        return None  # multiple or malformed ranges: serve the whole file
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _read_range(path: Path, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        remaining = length
        while remaining > 0:
            chunk = f.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
