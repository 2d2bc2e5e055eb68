"""The device's episode API under a real uvicorn on 127.0.0.1, and `spinal device` pulling from it.

Covers listing, ranges, checksums, path safety, deletion, then resumable pulls, CLI exit codes, and a pull that
converts into a valid LeRobot dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException
from spinal.cli import app as spinal_cli
from spinal.commands._cli import ExitCode
from spinal.dataset import ConvertOptions, convert_recordings, validate_dataset
from spinal.device import ChecksumMismatchError, DeviceClient, pull_episodes
from spinal.recording import EpisodeStatus, camera_files
from spinal.recording.synthetic import record_synthetic_episode
from spinal_edge.api import episodes as episodes_api
from spinal_edge.api.episodes import episodes_router
from typer.testing import CliRunner

TOKEN = "test-token-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class RequestLog:
    """ASGI middleware: records each request's path and Range header; can cut one response short."""

    def __init__(self, app) -> None:
        self.app = app
        self.counters = app.state.counters
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: dict[str, int] = {}  # path suffix -> bytes to send before dropping the connection

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((scope["path"], headers.get("range")))
        limit = next((n for suffix, n in self.cut_after.items() if scope["path"].endswith(suffix)), None)
        if limit is None:
            return await self.app(scope, receive, send)
        self.cut_after = {k: v for k, v in self.cut_after.items() if not scope["path"].endswith(k)}

        async def cutting_send(message):
            if message["type"] == "http.response.body":
                await send({"type": "http.response.body", "body": message["body"][:limit], "more_body": True})
                raise ConnectionAbortedError("test: connection dropped mid-file")
            await send(message)

        return await self.app(scope, receive, cutting_send)


def require_token(authorization: str | None = Header(default=None)) -> None:
    if authorization != f"Bearer {TOKEN}":
        raise HTTPException(status_code=401, detail="missing or wrong API token")


def make_app(root: Path) -> RequestLog:
    app = FastAPI()
    counters: Counter[str] = Counter()
    app.include_router(episodes_router(root, require_token, counters=counters))
    app.state.counters = counters

    @app.get("/api/status", dependencies=[Depends(require_token)])
    def status() -> dict:
        return {"mode": "policy", "loop": {"hz": 30.0}, "cameras": {"front": {"fps": 30.0}}}

    return RequestLog(app)


@contextmanager
def serve(app) -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def device(tmp_path):
    """A recordings root with two finished episodes, one being recorded and one discarded, served over HTTP."""
    root = tmp_path / "recordings"
    for seed, name in enumerate(("ep-1", "ep-2")):
        record_synthetic_episode(
            root, name, frames=30 + 5 * seed, cameras=("front", "wrist"), width=192, height=144, seed=seed
        )
    record_synthetic_episode(root, "ep-gone", frames=5, cameras=("front", "wrist"), width=64, height=48)
    meta = json.loads((root / "ep-gone" / "episode.json").read_text())
    meta["status"] = EpisodeStatus.DISCARDED.value
    (root / "ep-gone" / "episode.json").write_text(json.dumps(meta))
    live = record_synthetic_episode(
        root, "ep-live", frames=10, cameras=("front", "wrist"), width=64, height=48, close=False
    )
    live.sync()
    app = make_app(root)
    with serve(app) as url:
        yield {"root": root, "url": url, "log": app}
    live.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the router -------------------------------------------------------------------------------------------


def test_listing_offers_finished_episodes_with_checksums_and_hides_live_ones(device):
    listed = httpx.get(f"{device['url']}/api/episodes", headers=AUTH).json()["episodes"]
    by_id = {e["id"]: e for e in listed}
    assert sorted(by_id) == ["ep-1", "ep-2", "ep-gone", "ep-live"]
    assert (
        by_id["ep-live"]["status"] == "recording"
        and not by_id["ep-live"]["offered"]
        and by_id["ep-live"]["files"] == []
    )
    assert by_id["ep-gone"]["status"] == "discarded" and not by_id["ep-gone"]["offered"]
    ep1 = by_id["ep-1"]
    assert (
        ep1["offered"]
        and ep1["status"] == "complete"
        and ep1["frames"] == 30
        and ep1["task"] == "pick the cube"
    )
    names = [f["name"] for f in ep1["files"]]
    assert names == [
        "episode.json",
        "frames.arrows",
        "frames.idx",
        *camera_files("front"),
        *camera_files("wrist"),
    ]
    for f in ep1["files"]:
        path = device["root"] / "ep-1" / f["name"]
        assert f["sha256"] == _sha(path) and f["size"] == path.stat().st_size
    assert ep1["size_bytes"] == sum(f["size"] for f in ep1["files"])
    detail = httpx.get(f"{device['url']}/api/episodes/ep-2", headers=AUTH).json()
    assert detail["metadata"]["cameras"]["front"] == {"width": 192, "height": 144}


def test_an_unreadable_episode_is_listed_with_its_error_and_not_offered(device):
    broken = device["root"] / "ep-broken"
    broken.mkdir()
    (broken / "episode.json").write_text("{truncated")
    listed = {e["id"]: e for e in httpx.get(f"{device['url']}/api/episodes", headers=AUTH).json()["episodes"]}
    assert listed["ep-broken"]["status"] == "unreadable" and not listed["ep-broken"]["offered"]
    assert "not valid JSON" in listed["ep-broken"]["error"]
    response = httpx.get(f"{device['url']}/api/episodes/ep-broken/files/episode.json", headers=AUTH)
    assert response.status_code == 409


def test_requests_without_the_right_token_are_refused(device):
    url = device["url"]
    for method, path in (
        ("GET", "/api/episodes"),
        ("GET", "/api/episodes/ep-1/files/episode.json"),
        ("DELETE", "/api/episodes/ep-1"),
    ):
        assert httpx.request(method, url + path).status_code == 401
        assert httpx.request(method, url + path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert (device["root"] / "ep-1").is_dir()


def test_file_download_supports_ranges_if_range_and_head(device):
    path = device["root"] / "ep-1" / camera_files("front")[0]
    data, digest = path.read_bytes(), _sha(path)
    url = f"{device['url']}/api/episodes/ep-1/files/{path.name}"
    full = httpx.get(url, headers=AUTH)
    assert full.status_code == 200 and full.content == data
    assert full.headers["etag"] == f'"{digest}"' and full.headers["x-checksum-sha256"] == digest
    part = httpx.get(url, headers={**AUTH, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = httpx.get(url, headers={**AUTH, "Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == data[-5:]
    rest = httpx.get(url, headers={**AUTH, "Range": f"bytes={len(data) - 3}-", "If-Range": f'"{digest}"'})
    assert rest.status_code == 206 and rest.content == data[-3:]
    stale = httpx.get(url, headers={**AUTH, "Range": "bytes=5-", "If-Range": '"0000"'})
    assert stale.status_code == 200 and stale.content == data  # the client's copy is stale: whole file
    beyond = httpx.get(url, headers={**AUTH, "Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
    head = httpx.head(url, headers=AUTH)
    assert (
        head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.content == b""
    )


def test_episodes_being_recorded_or_discarded_are_not_served(device):
    for episode in ("ep-live", "ep-gone"):
        response = httpx.get(f"{device['url']}/api/episodes/{episode}/files/episode.json", headers=AUTH)
        assert response.status_code == 409
        assert "only complete or recovered episodes download" in response.json()["detail"]


def test_paths_cannot_leave_the_recordings_folder(device, tmp_path):
    root, url = device["root"], device["url"]
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "episode.json").write_text((root / "ep-1" / "episode.json").read_text())
    os.symlink(outside, root / "ep-link")
    os.symlink(outside / "episode.json", root / "ep-2" / "extra.json")
    (root / "ep-2" / "frames.idx").rename(root / "ep-2" / "frames.idx.real")
    os.symlink(outside / "episode.json", root / "ep-2" / "frames.idx")
    listed = {e["id"]: e for e in httpx.get(f"{url}/api/episodes", headers=AUTH).json()["episodes"]}
    assert "ep-link" not in listed
    assert "frames.idx" not in [f["name"] for f in listed["ep-2"]["files"]]
    attempts = [
        "/api/episodes/ep-link/files/episode.json",
        "/api/episodes/..%2F..%2Fetc/files/passwd",
        "/api/episodes/ep-1/files/..%2F..%2Fsecret%2Fepisode.json",
        "/api/episodes/ep-1/files/.checksums.json",
        "/api/episodes/ep-2/files/extra.json",
        "/api/episodes/ep-2/files/frames.idx",
        "/api/episodes/%2E%2E/files/episode.json",
    ]
    for attempt in attempts:
        response = httpx.get(url + attempt, headers=AUTH)
        assert response.status_code == 404, (attempt, response.status_code)
    # Those with an encoded '/' never match a route; the four that do are refused and counted.
    assert device["log"].counters["rejected.not_found"] >= 4


def test_checksums_are_hashed_once_and_survive_a_restart(device, monkeypatch):
    httpx.get(f"{device['url']}/api/episodes", headers=AUTH)
    sidecar = json.loads((device["root"] / "ep-1" / episodes_api.CHECKSUMS_FILE).read_text())
    assert sidecar["frames.arrows"]["sha256"] == _sha(device["root"] / "ep-1" / "frames.arrows")

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(episodes_api, "_hash_file", no_hashing)
    restarted = make_app(device["root"])  # a fresh cache: only the sidecar can answer
    with serve(restarted) as url:
        listed = httpx.get(f"{url}/api/episodes", headers=AUTH).json()["episodes"]
        assert all(f["sha256"] for e in listed for f in e["files"])
        monkeypatch.undo()
        (device["root"] / "ep-1" / "frames.idx").write_bytes(b"changed")
        changed = httpx.get(f"{url}/api/episodes/ep-1", headers=AUTH).json()
        digest = next(f["sha256"] for f in changed["files"] if f["name"] == "frames.idx")
        assert digest == hashlib.sha256(b"changed").hexdigest()


def test_delete_removes_finished_episodes_only(device):
    url = device["url"]
    assert httpx.delete(f"{url}/api/episodes/ep-live", headers=AUTH).status_code == 409
    assert httpx.delete(f"{url}/api/episodes/ep-2", headers=AUTH).status_code == 204
    assert not (device["root"] / "ep-2").exists()
    assert httpx.delete(f"{url}/api/episodes/ep-2", headers=AUTH).status_code == 404
    assert httpx.get(f"{url}/api/episodes/nope", headers=AUTH).status_code == 404


def test_openapi_documents_the_episode_routes(device):
    paths = httpx.get(f"{device['url']}/openapi.json").json()["paths"]
    assert {"/api/episodes", "/api/episodes/{episode_id}", "/api/episodes/{episode_id}/files/{name}"} <= set(
        paths
    )
    assert "delete" in paths["/api/episodes/{episode_id}"]


# -- pulling ----------------------------------------------------------------------------------------------


def test_pull_downloads_verified_episodes_then_skips_them(device, tmp_path):
    dest = tmp_path / "pulled"
    with DeviceClient(device["url"], token=TOKEN) as client:
        report = pull_episodes(client, dest, workers=3)
        assert report.pulled == ["ep-1", "ep-2"] and not report.failed
        assert set(report.not_offered) == {"ep-live", "ep-gone"}
        for name in ("episode.json", "frames.arrows", *camera_files("wrist")):
            assert (dest / "ep-1" / name).read_bytes() == (device["root"] / "ep-1" / name).read_bytes()
        assert not (dest / ".spinal-pull").exists()
        again = pull_episodes(client, dest)
    assert again.skipped == ["ep-1", "ep-2"] and again.pulled == [] and again.bytes_fetched == 0


def test_an_interrupted_pull_resumes_with_range_requests(device, tmp_path):
    dest = tmp_path / "pulled"
    cancel = threading.Event()
    received = [0]

    def stop_midway(kind, value):
        if kind == "bytes":
            received[0] += value
            if received[0] > 40_000:
                cancel.set()

    with DeviceClient(device["url"], token=TOKEN) as client:
        first = pull_episodes(client, dest, workers=1, only=["ep-1"], progress=stop_midway, cancel=cancel)
        assert first.failed and "cancelled" in first.failed["ep-1"]
        parts = list((dest / ".spinal-pull" / "ep-1").glob("*.part"))
        assert parts and not (dest / "ep-1").exists()
        kept = sum(p.stat().st_size for p in parts)
        device["log"].requests.clear()
        second = pull_episodes(client, dest, workers=2, only=["ep-1"])
    assert second.pulled == ["ep-1"] and second.bytes_resumed == kept > 0
    ranges = [r for _, r in device["log"].requests if r]
    assert ranges and all(r.startswith("bytes=") for r in ranges)
    for f in (device["root"] / "ep-1").iterdir():
        if not f.name.startswith("."):
            assert (dest / "ep-1" / f.name).read_bytes() == f.read_bytes()


def test_a_connection_dropped_mid_file_is_resumed_where_it_stopped(device, tmp_path):
    name = camera_files("front")[0]
    device["log"].cut_after[f"/ep-2/files/{name}"] = 12_345
    with DeviceClient(device["url"], token=TOKEN) as client:
        report = pull_episodes(client, tmp_path / "pulled", only=["ep-2"])
    assert report.pulled == ["ep-2"], report.failed
    assert (f"/api/episodes/ep-2/files/{name}", "bytes=12345-") in device["log"].requests
    assert _sha(tmp_path / "pulled" / "ep-2" / name) == _sha(device["root"] / "ep-2" / name)


def test_a_file_that_changes_after_listing_fails_its_checksum(device, tmp_path):
    target = device["root"] / "ep-1" / camera_files("wrist")[0]

    def tamper(kind, value):
        if kind == "total_bytes":  # listed, not yet downloaded: the device's file changes now
            data = bytearray(target.read_bytes())
            data[100] ^= 0xFF
            target.write_bytes(bytes(data))

    with DeviceClient(device["url"], token=TOKEN) as client:
        report = pull_episodes(client, tmp_path / "pulled", only=["ep-1"], progress=tamper)
        assert "does not match the device's sha256" in report.failed["ep-1"]
        assert not (tmp_path / "pulled" / "ep-1").exists()
        listed = {f.name: f for f in client.get_episode("ep-1").files}
        with pytest.raises(ChecksumMismatchError):
            stale = listed[target.name].model_copy(update={"sha256": "0" * 64})
            client.download("ep-1", stale, tmp_path / "one-file")


def test_device_commands_report_status_episodes_and_pull_with_exit_codes(device, tmp_path):
    runner = CliRunner()
    url = device["url"]
    result = runner.invoke(spinal_cli, ["device", "status", url, "--json"], env={"SPINAL_TOKEN": TOKEN})
    assert result.exit_code == 0 and json.loads(result.stdout)["mode"] == "policy"
    result = runner.invoke(spinal_cli, ["device", "status", url, "--token", TOKEN])
    assert result.exit_code == 0 and '"policy"' in result.stdout
    result = runner.invoke(spinal_cli, ["device", "episodes", url, "--token", TOKEN, "--json"])
    assert result.exit_code == 0 and len(json.loads(result.stdout)["episodes"]) == 4
    result = runner.invoke(spinal_cli, ["device", "episodes", url, "--token", "wrong"])
    assert result.exit_code == ExitCode.AUTH and "SPINAL_TOKEN" in result.output
    result = runner.invoke(
        spinal_cli, ["device", "pull", url, str(tmp_path / "p"), "--token", TOKEN, "--json"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["pulled"] == ["ep-1", "ep-2"]
    result = runner.invoke(
        spinal_cli, ["device", "pull", url, str(tmp_path / "p"), "--token", TOKEN, "-e", "nope"]
    )
    assert result.exit_code == ExitCode.PARTIAL and "no such episode" in result.output
    result = runner.invoke(spinal_cli, ["device", "status", "http://127.0.0.1:9", "--token", TOKEN])
    assert result.exit_code == ExitCode.UNREACHABLE and "cannot reach the device" in result.output
    result = runner.invoke(spinal_cli, ["device", "status", "ftp://x"])
    assert result.exit_code == ExitCode.USAGE


def test_pulled_episodes_convert_into_a_valid_dataset(device, tmp_path):
    with DeviceClient(device["url"], token=TOKEN) as client:
        pull_episodes(client, tmp_path / "raw")
    report = convert_recordings(
        tmp_path / "raw", tmp_path / "ds", ConvertOptions(repo_id="me/pulled", workers=2)
    )
    assert [e.episode_id for e in report.converted] == ["ep-1", "ep-2"] and report.total_frames == 65
    assert validate_dataset(tmp_path / "ds", decode=True).ok
