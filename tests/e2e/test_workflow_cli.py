"""The whole data workflow as a person types it, against `make demo`: the demo records an episode, then the
real `spinal` CLI asks the device for its status and episodes, pulls them (an interrupted pull resumes),
converts them into a LeRobotDataset v3, validates, describes and plots it, annotates it and renders samples.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pyarrow.parquet as pq
import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SPINAL = Path(sys.executable).parent / "spinal"
STARTUP_S = 240.0  # the cell starts the firmware in MicroPython next to everything else on a busy machine
COMMAND_S = 300.0
FIRST_TASK = "follow the demo cycle"  # what `make demo --record` records (spinal_edge.demo.DEMO_TASK)
SECOND_TASK = "wave at the front camera"


@dataclass
class RunningDemo:
    """`python -m spinal_edge.demo` (what `make demo` runs) as a child; its output lands in a file."""

    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, pattern: str, timeout: float = STARTUP_S) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.output(), re.MULTILINE)
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the demo exited {self.proc.returncode} first:\n{self.output()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not printed within {timeout} s:\n{self.output()[-4000:]}")
            time.sleep(0.2)

    def interrupt(self) -> int:
        """Ctrl-C, as a person stops it; the demo stops its cell in order and exits."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(120)


@contextlib.contextmanager
def demo(workdir: Path, *args: str) -> Iterator[RunningDemo]:
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir.parent / "demo-output.txt"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "spinal_edge.demo", "--workdir", str(workdir), *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield RunningDemo(proc, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                # Its children die with it (PR_SET_PDEATHSIG); the group kill catches anything else.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


def spinal(*args: str | Path, expect: int = 0) -> subprocess.CompletedProcess[str]:
    """One `spinal` command as a subprocess; fails the test with its output when the exit code is not `expect`."""
    done = subprocess.run(
        [str(SPINAL), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=COMMAND_S,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == expect, (
        f"spinal {' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done


def spinal_json(*args: str | Path, expect: int = 0) -> Any:
    return json.loads(spinal(*args, "--json", expect=expect).stdout)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_second_episode(url: str, token: str) -> str:
    """A second take through the device API (what the device page's record button sends)."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
        started = client.post("/api/episode/start", json={"task": SECOND_TASK})
        assert started.status_code == 201, started.text
        deadline = time.monotonic() + STARTUP_S
        while True:
            episode = client.get("/api/episode").json().get("episode") or {}
            cameras = episode.get("camera_frames") or {}
            if episode.get("frames", 0) >= 45 and min(cameras.values(), default=0) >= 30:
                break
            assert time.monotonic() < deadline, f"the second episode did not record: {episode}"
            time.sleep(0.2)
        stopped = client.post("/api/episode/stop")
        assert stopped.status_code == 200, stopped.text
        return str(stopped.json()["episode_id"])


def leave_interrupted_download(
    url: str, token: str, episode: dict[str, Any], dest: Path
) -> tuple[str, int, str]:
    """What a pull killed mid-episode leaves: the staging folder with one file half downloaded (the bytes
    the device sent, up to where the connection died) and one whose partial bytes are damaged."""
    staging = dest / ".spinal-pull" / episode["id"]
    staging.mkdir(parents=True)
    by_size = sorted(episode["files"], key=lambda f: f["size"], reverse=True)
    biggest, other = by_size[0], by_size[1]
    half = biggest["size"] // 2
    reply = httpx.get(
        f"{url}/api/episodes/{episode['id']}/files/{biggest['name']}",
        headers={"Authorization": f"Bearer {token}", "Range": f"bytes=0-{half - 1}"},
        timeout=30,
    )
    assert reply.status_code == 206 and len(reply.content) == half
    (staging / (biggest["name"] + ".part")).write_bytes(reply.content)
    assert other["size"] > 64
    (staging / (other["name"] + ".part")).write_bytes(b"\xff" * 64)
    return biggest["name"], half, other["name"]


def decoded_frames(video: Path) -> list[float]:
    """Every frame of an mp4 decoded with PyAV; their presentation times in seconds."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        return [float(frame.pts * stream.time_base) for frame in container.decode(stream)]


def language_rows(dataset: Path) -> tuple[list[list[dict]], list[list[dict]], list[int]]:
    """Per frame: the persistent rows, the event rows, and the episode index."""
    table = pq.read_table(
        dataset / "data", columns=["language_persistent", "language_events", "episode_index"]
    )
    return (
        table.column("language_persistent").to_pylist(),
        table.column("language_events").to_pylist(),
        table.column("episode_index").to_pylist(),
    )


def annotate_from_labels(dataset: Path, labels: Path, episodes: list[dict[str, Any]]) -> None:
    """`--backend manual`: a person's subtask spans and interjection land on the frames they name."""
    labels.write_text(
        yaml.safe_dump(
            {
                "episodes": {
                    0: {
                        "initial_say": "Okay, following the demo cycle.",
                        "task_rephrasings": ["run through the demo cycle"],
                        "subtasks": [
                            {"start": 0.0, "text": "lift the arm to its first pose"},
                            {"start": 0.6, "text": "sweep through the cycle", "memory": "I lifted the arm."},
                        ],
                        "interjections": [{"t": 1.2, "text": "go a bit slower", "say": "Going slower."}],
                    },
                    1: {"subtasks": [{"start": 0.0, "text": "raise the arm and wave"}]},
                }
            }
        )
    )
    summary = spinal_json("annotate", dataset, "--backend", "manual", "--labels", labels, "--no-vqa")
    assert summary["failed"] == {} and summary["written"] and summary["validation_errors"] == [], summary
    persistent, events, episode_of = language_rows(dataset)
    first = next(i for i, e in enumerate(episode_of) if e == 0)
    subtasks = [(r["timestamp"], r["content"]) for r in persistent[first] if r["style"] == "subtask"]
    assert subtasks == [
        (0.0, "lift the arm to its first pose"),
        (pytest.approx(0.6, abs=0.5 / 30), "sweep through the cycle"),
    ]
    said = [
        (i, r)
        for i, rows in enumerate(events)
        for r in rows
        if r["style"] == "interjection" and episode_of[i] == 0
    ]
    assert [r["content"] for _, r in said] == ["go a bit slower"]
    frame = said[0][0]
    assert abs((frame - first) / 30 - 1.2) <= 0.5 / 30, "the interjection sits on the frame nearest 1.2 s"
    speech = [r for r in events[frame] if r["role"] == "assistant" and r["tool_calls"]]
    assert "Going slower." in json.dumps(speech[0]["tool_calls"])
    second = episode_of.index(1)
    assert [r["content"] for r in persistent[second] if r["style"] == "subtask"] == ["raise the arm and wave"]
    assert spinal_json("dataset", "validate", dataset)["ok"]


def annotate_through_a_server(dataset: Path, total: int) -> None:
    """`--backend openai` against an OpenAI-compatible server on 127.0.0.1 (real HTTP, canned replies)."""
    from spinal.annotate.fake_server import FakeVlmServer

    with FakeVlmServer(max_lifetime_s=COMMAND_S) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        summary = spinal_json(
            "annotate",
            dataset,
            "--backend",
            "openai",
            "--base-url",
            server.base_url,
            "--model",
            "demo-vlm",
            "--api-key-env",
            "SPINAL_TEST_NO_SUCH_KEY",  # a key set for a real endpoint never goes to the test server
            "--concurrency",
            "4",
        )
        asked = dict(server.kinds)
    assert summary["failed"] == {} and summary["written"] and summary["frames_written"] == total, summary
    # Both episodes went through the model: rephrasings and subtasks once each, VQA at every tick.
    assert asked["task_rephrasings"] == 2 and asked["subtasks"] >= 2 and asked["vqa"] >= 2, asked
    persistent, events, _ = language_rows(dataset)
    assert all(persistent) and any(r["style"] == "vqa" for rows in events for r in rows)
    assert spinal_json("dataset", "validate", dataset)["ok"]


def test_demo_recordings_pull_convert_validate_plot_annotate_and_render(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    dataset = tmp_path / "dataset"
    with demo(tmp_path / "demo", "--record", "3") as running:
        kept = running.wait_for_line(r"episode (\S+) kept: (\d+) frames")
        first_id, first_frames = kept.group(1), int(kept.group(2))
        url = running.wait_for_line(r"device page: (\S+)").group(1)
        token = running.wait_for_line(r"API token: +(\S+)").group(1)
        # The demo's device listens on loopback only.
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url

        status = spinal_json("device", "status", url, "--token", token)
        assert status["mode"] == "policy"
        assert status["recorder"]["episode"] is None, "nothing is recording any more"
        assert status["recorder"]["last_episode"]["episode_id"] == first_id
        assert "front" in status["cameras"]
        # A wrong token is refused with its own exit code and a message that says what to do.
        refused = spinal("device", "status", url, "--token", "not-the-token", expect=6)
        assert "token" in refused.stderr

        listed = spinal_json("device", "episodes", url, "--token", token)["episodes"]
        assert [e["id"] for e in listed] == [first_id]
        first = listed[0]
        assert first["offered"] and first["status"] == "complete" and first["task"] == FIRST_TASK
        assert first["frames"] == first_frames
        table = spinal("device", "episodes", url, "--token", token).stdout
        assert first_id in table and "1 episode(s), 1 ready to pull" in table

        # The first take is pulled right away, then a second one is recorded.
        pulled = spinal_json("device", "pull", url, recordings, "--token", token)
        assert pulled["pulled"] == [first_id] and pulled["failed"] == {} and pulled["bytes_resumed"] == 0
        second_id = record_second_episode(url, token)
        listed = {e["id"]: e for e in spinal_json("device", "episodes", url, "--token", token)["episodes"]}
        assert set(listed) == {first_id, second_id}
        second = listed[second_id]
        assert second["offered"] and len(second["files"]) >= 2

        # The pull of the second take was cut off: it resumes the half-downloaded file where it stopped,
        # starts the damaged one over, verifies every checksum, and leaves the first take alone.
        first_marker = (recordings / first_id / ".spinal-pull.json").stat().st_mtime_ns
        resumed_name, resumed_at, damaged_name = leave_interrupted_download(url, token, second, recordings)
        pulled = spinal_json("device", "pull", url, recordings, "--token", token)
        assert pulled["pulled"] == [second_id] and pulled["skipped"] == [first_id], pulled
        assert pulled["failed"] == {} and pulled["bytes_resumed"] == resumed_at, pulled
        # The damaged file came twice (its rest, then afresh after the checksum failed); nothing else did.
        damaged = next(f for f in second["files"] if f["name"] == damaged_name)
        assert pulled["bytes_fetched"] == second["size_bytes"] - resumed_at - 64 + damaged["size"], pulled
        assert (recordings / first_id / ".spinal-pull.json").stat().st_mtime_ns == first_marker
        assert not (recordings / ".spinal-pull").exists(), "the staging folder is cleaned up"
        for episode in listed.values():
            for f in episode["files"]:
                assert sha256(recordings / episode["id"] / f["name"]) == f["sha256"], f["name"]
        assert (recordings / second_id / resumed_name).stat().st_size // 2 == resumed_at
        again = spinal_json("device", "pull", url, recordings, "--token", token)
        assert again["pulled"] == [] and sorted(again["skipped"]) == sorted(listed)
        assert again["bytes_fetched"] == 0

        # Ctrl-C stops the whole cell; nothing else needs the device.
        assert running.interrupt() == 0, running.output()[-4000:]
        assert "spinal demo: stopped." in running.output()

    # Conversion: every pulled take becomes one episode, in recording order, with the device's frame counts.
    report = spinal_json("dataset", "convert", recordings, dataset, "--repo-id", "demo/workflow")
    episodes = report["episodes"]
    assert [e["episode_id"] for e in episodes] == [first_id, second_id]
    assert all(e["converted"] for e in episodes) and [e["episode_index"] for e in episodes] == [0, 1]
    for outcome in episodes:
        device_frames = listed[outcome["episode_id"]]["frames"]
        notes = outcome["notes"]
        assert notes["source_frames"] == device_frames, outcome
        # Rows sit on the 30 fps grid; only rows before every camera delivered a frame are trimmed.
        assert outcome["frames"] + notes["trimmed_rows"] - notes["held_ticks"] <= device_frames, outcome
        assert outcome["frames"] > 0
    total = sum(e["frames"] for e in episodes)
    assert report["total_frames"] == total

    checked = spinal_json("dataset", "validate", dataset, "--decode")
    assert checked["ok"] and checked["violations"] == [], checked
    assert checked["checked"]["episodes"] == 2 and checked["checked"]["frames"] == total

    info = spinal_json("dataset", "info", dataset)
    assert info["codebase_version"] == "v3.0" and info["fps"] == 30
    assert info["episodes"] == 2 and info["frames"] == total
    assert info["tasks"] == [FIRST_TASK, SECOND_TASK]
    assert info["features"]["observation.state"]["shape"] == [6]
    assert "observation.images.front" in info["videos"]

    # Every video frame decodes with PyAV: as many as rows, on each episode's timestamps.
    meta = pq.read_table(dataset / "meta" / "episodes").to_pylist()
    assert [m["length"] for m in meta] == [e["frames"] for e in episodes]
    data = pq.read_table(dataset / "data").to_pydict()
    assert data["index"] == list(range(total))
    for m in meta:
        video = dataset / (
            f"videos/observation.images.front/chunk-{m['videos/observation.images.front/chunk_index']:03d}"
            f"/file-{m['videos/observation.images.front/file_index']:03d}.mp4"
        )
        times = decoded_frames(video)
        start = m["videos/observation.images.front/from_timestamp"]
        inside = [t for t in times if start - 1e-4 <= t < m["videos/observation.images.front/to_timestamp"]]
        assert len(inside) == m["length"]
        assert inside[0] == pytest.approx(start, abs=1e-4)

    plots = spinal_json("dataset", "plot", dataset, tmp_path / "plots")["written"]
    assert len(plots) == 2
    for png in map(Path, plots):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    # Language, three ways on three copies: human labels, an OpenAI-compatible server, the stub backend.
    for copy in ("manual", "served"):
        shutil.copytree(dataset, tmp_path / copy)
    annotate_from_labels(tmp_path / "manual", tmp_path / "labels.yaml", episodes)
    annotate_through_a_server(tmp_path / "served", total)

    # The stub backend annotates every episode, rendering uses the shipped recipes, and the annotated
    # dataset still validates.
    summary = spinal_json("annotate", dataset, "--backend", "stub")
    assert summary["failed"] == {} and sorted(summary["annotated"]) == [0, 1], summary
    assert summary["written"] and summary["frames_written"] == total
    assert summary["validation_errors"] == []
    table = pq.read_table(dataset / "data")
    assert {"language_persistent", "language_events"} <= set(table.column_names)
    info_json = json.loads((dataset / "meta" / "info.json").read_text())
    assert info_json["features"]["language_persistent"]["dtype"] == "language"
    assert any(t["function"]["name"] == "say" for t in info_json["tools"])
    persistent = table.column("language_persistent").to_pylist()
    assert all(rows for rows in persistent), "every frame carries its episode's persistent rows"
    assert {row["style"] for row in persistent[0]} >= {"subtask", "plan"}

    recipe = ("--recipe", "subtask_mem_vqa_speech", "--episode", "1", "--samples", "100000")
    rendered = spinal("render", dataset, *recipe, "--json")
    samples = [json.loads(line) for line in rendered.stdout.splitlines() if line.strip()]
    preview = spinal("render", dataset, *recipe).stdout
    counted = re.search(r"episode 1: (\d+) of (\d+) frames render", preview)
    assert counted, preview
    assert len(samples) == int(counted.group(1)) > 0 and int(counted.group(2)) == episodes[1]["frames"]
    for sample in samples:
        messages, targets = sample["messages"], sample["target_message_indices"]
        assert len(messages) == len(sample["message_streams"]) >= 1
        # A sample supervises the assistant's turns, or is a flow-only low-level turn (execute the subtask).
        assert all(messages[i]["role"] == "assistant" for i in targets), sample
        assert targets or sample["message_streams"] == ["low_level"], sample
    assert {"current_subtask", "execute_subtask"} <= {s["branch"] for s in samples}
    preview = spinal("render", dataset, "--recipe", "subtasks_vqa").stdout
    assert f"of {episodes[0]['frames']} frames render" in preview, preview

    checked = spinal_json("dataset", "validate", dataset)
    assert checked["ok"] and checked["checked"]["frames"] == total, checked
