"""The one-click episode download: GET /api/episodes/{id}/archive streams the episode folder as a tar with a
SHA256SUMS file, over real HTTP, behind the same token/session gate as the other episode routes."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
from spinal_edge.api.episodes import ARCHIVE_SUMS_FILE, CHUNK_BYTES, _tar_header, _tar_stream
from spinal_edge.testing import wait_for

pytestmark = pytest.mark.slow


def _record(served: Any, task: str = "wave at the camera") -> str:
    client = served.client
    episode = client.post("/api/episode/start", json={"task": task}).json()
    wait_for(lambda: client.get("/api/episode").json()["episode"]["camera_frames"].get("front", 0) > 3)
    client.post("/api/episode/stop")
    return str(episode["episode_id"])


def test_the_archive_holds_every_file_and_checksums_that_match_the_per_file_downloads(served_device) -> None:
    client = served_device.client
    episode_id = _record(served_device)
    listed = {f["name"]: f for f in client.get(f"/api/episodes/{episode_id}").json()["files"]}
    response = client.get(f"/api/episodes/{episode_id}/archive")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-tar"
    assert response.headers["content-disposition"] == f'attachment; filename="{episode_id}.tar"'
    assert int(response.headers["content-length"]) == len(response.content)
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names[0] == f"{episode_id}/{ARCHIVE_SUMS_FILE}"
        assert sorted(names[1:]) == sorted(f"{episode_id}/{name}" for name in listed)
        sums_file = tar.extractfile(members[0])
        assert sums_file is not None
        sums = dict(reversed(line.split("  ", 1)) for line in sums_file.read().decode().splitlines())
        for member in members[1:]:
            name = member.name.split("/", 1)[1]
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            digest = hashlib.sha256(data).hexdigest()
            assert digest == sums[name] == listed[name]["sha256"], name
            assert data == client.get(f"/api/episodes/{episode_id}/files/{name}").content
    assert response.headers["etag"] == f'"{hashlib.sha256(sums_file_bytes(response.content)).hexdigest()}"'


def sums_file_bytes(archive: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        first = tar.extractfile(tar.getmembers()[0])
        assert first is not None
        return first.read()


def test_the_archive_is_refused_without_auth_for_unknown_and_for_recording_episodes(served_device) -> None:
    client = served_device.client
    episode_id = _record(served_device)
    assert served_device.anonymous.get(f"/api/episodes/{episode_id}/archive").status_code == 401
    assert client.get("/api/episodes/ep_does_not_exist/archive").status_code == 404
    assert client.get("/api/episodes/..%2F..%2Fetc/archive").status_code == 404
    current = client.post("/api/episode/start", json={"task": "still going"}).json()["episode_id"]
    try:
        response = client.get(f"/api/episodes/{current}/archive")
        assert response.status_code == 409
        assert "only complete or recovered episodes download" in response.json()["detail"]
    finally:
        client.post("/api/episode/discard")


def test_the_archive_has_its_own_operation_in_the_openapi_schema(served_device) -> None:
    schema = served_device.client.get("/openapi.json").json()
    operation = schema["paths"]["/api/episodes/{episode_id}/archive"]["get"]
    assert operation["operationId"] == "download_episode_archive"
    assert "application/x-tar" in operation["responses"]["200"]["content"]
    ids = [
        op["operationId"] for path in schema["paths"].values() for op in path.values() if "operationId" in op
    ]
    assert ids.count("download_episode_archive") == 1


def test_the_archive_streams_in_bounded_chunks_without_a_temporary_copy(tmp_path: Path) -> None:
    big = tmp_path / "camera_front.mjpeg"
    big.write_bytes(bytes(range(256)) * (3 * CHUNK_BYTES // 256 + 7))  # about 3 chunks, not block-aligned
    size = big.stat().st_size
    members: list[tuple[bytes, Path | bytes, int]] = [
        (_tar_header("ep/SHA256SUMS", 3, 0), b"abc", 3),
        (_tar_header("ep/camera_front.mjpeg", size, 0), big, size),
    ]
    chunks = list(_tar_stream(members))
    assert max(len(c) for c in chunks) <= CHUNK_BYTES  # never the whole file in memory
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert tar.extractfile("ep/camera_front.mjpeg").read() == big.read_bytes()  # type: ignore[union-attr]


def test_a_file_that_shrinks_while_streaming_ends_the_archive_instead_of_corrupting_it(
    tmp_path: Path,
) -> None:
    small = tmp_path / "frames.arrow"
    small.write_bytes(b"x" * 1000)
    members: list[tuple[bytes, Path | bytes, int]] = [(_tar_header("ep/frames.arrow", 5000, 0), small, 5000)]
    with pytest.raises(OSError, match="shrank"):
        list(_tar_stream(members))
