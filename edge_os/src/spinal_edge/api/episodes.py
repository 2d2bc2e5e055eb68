"""The device API for recorded episodes: list, describe, download (HTTP ranges, sha256; or the whole episode as
one streamed tar with its SHA256SUMS) and delete.

`episodes_router(recordings_root, auth)` builds the FastAPI router the spinal-edge app mounts; the SDK's
`spinal device episodes|pull` talk to it. Episodes still being recorded are listed but never offered.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from spinal.device.models import EpisodeFile, EpisodeList, EpisodeSummary
from spinal.fsutil import write_json_atomic
from spinal.recording import (
    METADATA_FILE,
    EpisodeMetadata,
    EpisodeStatus,
    RecordingError,
    is_valid_episode_id,
    load_metadata,
)

CHECKSUMS_FILE = ".checksums.json"
#: The first member of an episode archive: `sha256sum -c` checks the extracted files against it.
ARCHIVE_SUMS_FILE = "SHA256SUMS"
_TAR_BLOCK = tarfile.BLOCKSIZE
CHUNK_BYTES = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: Episodes in these states are finished on disk and may be pulled.
OFFERED = frozenset({EpisodeStatus.COMPLETE, EpisodeStatus.RECOVERED})


class EpisodeDetail(EpisodeSummary):
    """One episode with its full episode.json (the answer of `GET /api/episodes/{id}`)."""

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
        # A read-only disk only costs a re-hash later.
        with contextlib.suppress(OSError):
            write_json_atomic(episode_dir / CHECKSUMS_FILE, payload, indent=1, sort_keys=True)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Episodes:
    """Looks episodes up under the recordings root without ever leaving it, and counts what it refuses."""

    def __init__(self, root: Path, checksums: ChecksumCache, counters: Counter[str]) -> None:
        self.root = Path(root)
        self.checksums = checksums
        self.counters = counters

    def refuse(self, status: int, why: str, detail: str) -> HTTPException:
        self.counters[f"rejected.{why}"] += 1
        return HTTPException(status, detail)

    def directory(self, episode_id: str) -> Path:
        path = self.root / episode_id
        if (
            not is_valid_episode_id(episode_id)
            or path.is_symlink()
            or not path.is_dir()
            or not (path / METADATA_FILE).is_file()
        ):
            raise self.refuse(404, "not_found", f"episode {episode_id!r} does not exist")
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
            stop_reason=meta.stop_reason or None,
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
    recordings_root: Path,
    auth: Callable[..., Any],
    *,
    checksums: ChecksumCache | None = None,
    counters: Counter[str] | None = None,
) -> APIRouter:
    """The `/api/episodes` routes over `recordings_root`, every route guarded by the `auth` dependency.

    `counters` (for the daemon's metrics) counts `files_served`, `bytes_served`, `deleted` and each
    refusal as `rejected.<why>` (`not_found`, `not_offered`, `bad_range`, `recording`).
    """
    episodes = _Episodes(
        Path(recordings_root), checksums or ChecksumCache(), counters if counters is not None else Counter()
    )
    router = APIRouter(prefix="/api/episodes", tags=["episodes"], dependencies=[Depends(auth)])

    @router.get(
        "", response_model=EpisodeList, summary="List recorded episodes", operation_id="list_episodes"
    )
    def list_episodes() -> EpisodeList:
        items = []
        for episode_id in episodes.all_ids():
            try:
                items.append(EpisodeSummary(**episodes.summary(episode_id).model_dump(exclude={"metadata"})))
            except HTTPException:
                continue  # deleted while listing
        return EpisodeList(episodes=items)

    @router.get(
        "/{episode_id}",
        response_model=EpisodeDetail,
        summary="Describe one episode",
        operation_id="get_episode",
    )
    def get_episode(episode_id: str) -> EpisodeDetail:
        return episodes.summary(episode_id, with_metadata=True)

    # GET and HEAD are two operations of the schema, each with its own operation id.
    @router.get(
        "/{episode_id}/files/{name}",
        summary="Download one file of an episode (supports Range; ETag is the sha256)",
        response_class=Response,
        operation_id="download_episode_file",
    )
    def download(episode_id: str, name: str, request: Request) -> Response:
        return _serve_file(episodes, episode_id, name, request)

    @router.head(
        "/{episode_id}/files/{name}",
        summary="Size and sha256 of one file",
        response_class=Response,
        operation_id="head_episode_file",
    )
    def file_headers(episode_id: str, name: str, request: Request) -> Response:
        return _serve_file(episodes, episode_id, name, request)

    @router.get(
        "/{episode_id}/archive",
        summary="Download a whole episode as one tar with a SHA256SUMS file (streamed)",
        response_class=Response,
        operation_id="download_episode_archive",
        responses={200: {"content": {"application/x-tar": {}}, "description": "the episode folder as a tar"}},
    )
    def download_archive(episode_id: str) -> Response:
        return _serve_archive(episodes, episode_id)

    @router.delete(
        "/{episode_id}",
        status_code=204,
        summary="Delete an episode from the device",
        operation_id="delete_episode",
    )
    def delete_episode(episode_id: str) -> Response:
        path = episodes.directory(episode_id)
        try:
            status = load_metadata(path).status
        except RecordingError:
            status = None
        if status == EpisodeStatus.RECORDING:
            raise episodes.refuse(
                409, "recording", f"episode {episode_id} is being recorded; stop it before deleting"
            )
        shutil.rmtree(path)
        episodes.checksums.forget(path)
        episodes.counters["deleted"] += 1
        return Response(status_code=204)

    return router


def _offered(episodes: _Episodes, episode_id: str) -> tuple[Path, EpisodeMetadata]:
    """The folder and metadata of an episode that may be downloaded; refuses one still recording or unreadable."""
    path = episodes.directory(episode_id)
    try:
        meta = load_metadata(path)
    except RecordingError as exc:
        raise episodes.refuse(409, "not_offered", f"episode {episode_id} cannot be served: {exc}") from None
    if meta.status not in OFFERED:
        raise episodes.refuse(
            409,
            "not_offered",
            f"episode {episode_id} is {meta.status.value}; only complete or recovered episodes download",
        )
    return path, meta


def _serve_file(episodes: _Episodes, episode_id: str, name: str, request: Request) -> Response:
    """One offered file, whole or one byte range, with its sha256 as ETag (HEAD: headers only)."""
    path, meta = _offered(episodes, episode_id)
    file_path = path / name
    try:
        st = file_path.lstat() if name in meta.file_names() else None
    except FileNotFoundError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        raise episodes.refuse(404, "not_found", f"episode {episode_id} has no file {name!r}")
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
            episodes.counters["rejected.bad_range"] += 1
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
    episodes.counters["files_served"] += 1
    episodes.counters["bytes_served"] += length
    return StreamingResponse(_read_range(file_path, start, length), status_code=status, headers=headers)


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
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    if end < start:
        return None
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


def _serve_archive(episodes: _Episodes, episode_id: str) -> Response:
    """The episode folder as an uncompressed tar, built while it streams (no temporary copy): SHA256SUMS first,
    then every file; the length is known up front, and the ETag is the sha256 of SHA256SUMS."""
    path, meta = _offered(episodes, episode_id)
    files = episodes.files(path, meta)
    sums = "".join(f"{f.sha256}  {f.name}\n" for f in files).encode()
    mtime = max((int((path / f.name).lstat().st_mtime) for f in files), default=0)
    members: list[tuple[bytes, Path | bytes, int]] = [
        (_tar_header(f"{episode_id}/{ARCHIVE_SUMS_FILE}", len(sums), mtime), sums, len(sums))
    ]
    for f in files:
        file_path = path / f.name
        members.append(
            (
                _tar_header(f"{episode_id}/{f.name}", f.size, int(file_path.lstat().st_mtime)),
                file_path,
                f.size,
            )
        )
    length = sum(len(header) + _padded(size) for header, _, size in members) + 2 * _TAR_BLOCK
    episodes.counters["archives_served"] += 1
    episodes.counters["bytes_served"] += length
    headers = {
        "Content-Length": str(length),
        "Content-Disposition": f'attachment; filename="{episode_id}.tar"',
        "ETag": f'"{hashlib.sha256(sums).hexdigest()}"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(_tar_stream(members), media_type="application/x-tar", headers=headers)


def _tar_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _padded(size: int) -> int:
    return -(-size // _TAR_BLOCK) * _TAR_BLOCK


def _tar_stream(members: list[tuple[bytes, Path | bytes, int]]) -> Iterator[bytes]:
    for header, body, size in members:
        yield header
        if isinstance(body, bytes):
            yield body
        else:
            sent = 0
            for chunk in _read_range(body, 0, size):
                sent += len(chunk)
                yield chunk
            if sent != size:
                # A shorter file would shift every later member; end the response instead of sending a bad tar.
                raise OSError(f"{body} shrank while it was being sent; download the episode again")
        yield b"\0" * (_padded(size) - size)
    yield b"\0" * (2 * _TAR_BLOCK)
