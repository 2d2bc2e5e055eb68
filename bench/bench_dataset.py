"""Dataset benchmarks: LeRobotDataset conversion throughput, the converter's peak memory against episode
length, and the recorder's cost per frame.

Conversion (2 cameras, 640x480) is compared with the floor of the same work done inline (JPEG decode + H.264
encode, one thread); the converter's memory for a long episode with its memory for a short one; the recorder
with plain appends of the same bytes to a file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import simplejpeg
from spinal.dataset import (
    ConvertOptions,
    VideoSettings,
    available_encoders,
    convert_recordings,
    validate_dataset,
)
from spinal.recording import SO101_JOINT_NAMES, EpisodeReader, EpisodeWriter
from spinal.recording.synthetic import record_synthetic_episode, render_frame

from bench.harness import Table, percentile

WIDTH, HEIGHT, FPS = 640, 480, 30
CAMERAS = ("front", "wrist")


def run(quick: bool) -> list[Table]:
    episodes, frames = (2, 60) if quick else (4, 300)
    work = Path(tempfile.mkdtemp(prefix="bench-dataset-"))
    try:
        raw = work / "raw"
        for e in range(episodes):
            record_synthetic_episode(
                raw, f"ep-{e}", frames=frames, fps=FPS, cameras=CAMERAS, width=WIDTH, height=HEIGHT, seed=e
            )
        return [
            _conversion_table(work, raw, episodes, frames, quick),
            _memory_table(work, quick),
            _recorder_table(work, quick),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _conversion_table(work: Path, raw: Path, episodes: int, frames: int, quick: bool) -> Table:
    rows = episodes * frames
    codec = available_encoders()[0]
    table = Table(
        f"Conversion to LeRobotDataset v3: {episodes} episodes x {frames} frames, 2 cameras {WIDTH}x{HEIGHT}",
        ["case", "codec", "seconds", "rows/s", "camera frames/s", "vs inline floor"],
    )
    floor_s = _inline_floor(raw, codec)
    floor_rate = rows / floor_s
    cases = [("spinal convert, 1 worker", 1, codec), ("spinal convert, 2 workers", 2, codec)]
    if not quick and "av1" in available_encoders() and codec != "av1":
        cases.append(("spinal convert, 2 workers", 2, "av1"))
    for name, workers, case_codec in cases:
        out = work / f"out-{workers}-{case_codec}"
        started = time.perf_counter()
        report = convert_recordings(
            raw,
            out,
            ConvertOptions(repo_id="bench/x", workers=workers, video=VideoSettings(codec=case_codec)),
        )
        seconds = time.perf_counter() - started
        assert report.total_frames == rows and validate_dataset(out).ok
        rate = rows / seconds
        table.add(
            name,
            case_codec,
            seconds,
            rate,
            rate * len(CAMERAS),
            rate / floor_rate if case_codec == codec else "-",
        )
        shutil.rmtree(out)
    table.add(
        "inline floor: JPEG decode + encode, 1 thread",
        codec,
        floor_s,
        floor_rate,
        floor_rate * len(CAMERAS),
        1.0,
    )
    table.notes += [
        f"{os.cpu_count()} CPUs; x264 preset veryfast, crf 23, keyframe every 2 frames (as LeRobot), yuv420p.",
        "rows/s = dataset rows (one per control tick, each with one frame per camera) per wall-clock second, "
        "including worker start-up, parquet, statistics, concatenation into shared mp4 files and metadata.",
        "The floor decodes each JPEG and encodes it with the same encoder settings in one thread, nothing else.",
    ]
    return table


def _inline_floor(raw: Path, codec: str) -> float:
    settings = VideoSettings(codec=codec).resolved()
    encoder_name = {"h264": "libx264", "av1": "libsvtav1"}[settings.codec]
    options = {"g": "2", "crf": str(settings.crf), "threads": "1"}
    options.update({"preset": "veryfast", "bf": "0"} if settings.codec == "h264" else {"preset": "10"})
    started = time.perf_counter()
    for episode in sorted(raw.iterdir()):
        reader = EpisodeReader(episode)
        for camera in CAMERAS:
            with tempfile.NamedTemporaryFile(suffix=".mp4") as tmp:
                container = av.open(tmp.name, "w")
                stream = container.add_stream(encoder_name, rate=FPS, options=options)
                stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
                for k, frame in enumerate(reader.iter_camera_frames(camera)):
                    video_frame = av.VideoFrame.from_ndarray(
                        simplejpeg.decode_jpeg(frame.jpeg), format="rgb24"
                    )
                    video_frame.pts, video_frame.time_base = k, Fraction(1, FPS)
                    container.mux(stream.encode(video_frame))
                container.mux(stream.encode(None))
                container.close()
    return time.perf_counter() - started


# Runs in a fresh interpreter so its peak-RSS counters hold this one conversion only: RUSAGE_SELF is the
# process that assembles the dataset, RUSAGE_CHILDREN the largest (waited-for) episode worker.
_PEAK_RSS_SCRIPT = """
import json, resource, sys, time
from pathlib import Path
from spinal.dataset import ConvertOptions, convert_recordings
started = time.perf_counter()
report = convert_recordings(Path(sys.argv[1]), Path(sys.argv[2]), ConvertOptions(repo_id="bench/rss", workers=1))
print(json.dumps({
    "frames": report.total_frames,
    "seconds": time.perf_counter() - started,
    "main_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "worker_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}))
"""


def _memory_table(work: Path, quick: bool) -> Table:
    lengths = (100, 1000) if quick else (300, 3000)
    table = Table(
        f"Converter peak memory against episode length: 1 episode, 2 cameras {WIDTH}x{HEIGHT}, 1 worker",
        [
            "episode frames",
            "recording MiB",
            "worker peak RSS MiB",
            "assembler peak RSS MiB",
            "seconds",
            "worker RSS vs shortest",
        ],
    )
    shortest = None
    for frames in lengths:
        raw = work / f"rss-{frames}" / "raw"
        record_synthetic_episode(
            raw, "ep-0", frames=frames, fps=FPS, cameras=CAMERAS, width=WIDTH, height=HEIGHT, seed=frames
        )
        recording_mib = sum(p.stat().st_size for p in raw.rglob("*") if p.is_file()) / 2**20
        done = subprocess.run(
            [sys.executable, "-c", _PEAK_RSS_SCRIPT, str(raw), str(work / f"rss-{frames}" / "out")],
            capture_output=True,
            text=True,
            check=True,
        )
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        assert measured["frames"] >= frames - 2, measured
        worker_mib = measured["worker_kib"] / 1024
        shortest = shortest or worker_mib
        table.add(
            frames,
            recording_mib,
            worker_mib,
            measured["main_kib"] / 1024,
            measured["seconds"],
            worker_mib / shortest,
        )
        shutil.rmtree(work / f"rss-{frames}")
    table.notes += [
        "Peak resident set size (getrusage ru_maxrss) of a fresh `convert_recordings` run: the worker that "
        "decodes JPEGs and encodes the videos, and the process that assembles parquet, mp4 files and metadata.",
        "Frames stream through the worker one at a time per camera, so memory stays flat while the episode "
        "grows tenfold; the state/action arrays (6 float32 per frame) are the only per-frame data held whole.",
    ]
    return table


def _recorder_table(work: Path, quick: bool) -> Table:
    count = 300 if quick else 1800
    jpegs = [
        simplejpeg.encode_jpeg(render_frame(k, WIDTH, HEIGHT, c), quality=85)
        for k in range(30)
        for c in (0, 1)
    ]
    state = np.zeros(6, dtype=np.float32)
    writer = EpisodeWriter(
        work / "rec",
        episode_id="bench",
        task="bench",
        fps=FPS,
        state_names=SO101_JOINT_NAMES,
        cameras={c: (WIDTH, HEIGHT) for c in CAMERAS},
        auto_sync_s=None,
    )
    spinal_us, spinal_sync_us = [], []
    for k in range(count):
        t0 = time.perf_counter_ns()
        writer.append_frame(timestamp=k / FPS, state=state, action=state, mode="policy")
        writer.append_camera_frame("front", jpegs[(2 * k) % 60], k / FPS)
        writer.append_camera_frame("wrist", jpegs[(2 * k + 1) % 60], k / FPS)
        t1 = time.perf_counter_ns()
        spinal_us.append((t1 - t0) / 1000)
        if k % FPS == FPS - 1:
            writer.sync()
            spinal_sync_us.append((time.perf_counter_ns() - t1) / 1000)
    writer.close()

    plain_us, plain_sync_us = [], []
    with open(work / "plain.bin", "wb", buffering=1 << 20) as plain:
        for k in range(count):
            t0 = time.perf_counter_ns()
            plain.write(state.tobytes())
            plain.write(jpegs[(2 * k) % 60])
            plain.write(jpegs[(2 * k + 1) % 60])
            zlib.crc32(b"")  # keep the loops shaped alike
            t1 = time.perf_counter_ns()
            plain_us.append((t1 - t0) / 1000)
            if k % FPS == FPS - 1:
                plain.flush()
                os.fsync(plain.fileno())
                plain_sync_us.append((time.perf_counter_ns() - t1) / 1000)
    table = Table(
        f"Recorder cost per control tick (state + 2 JPEGs of ~{len(jpegs[0]) // 1024} KiB), {count} ticks",
        ["writer", "append p50 us", "append p99 us", "sync p50 us", "sync p99 us", "append p50 vs plain"],
    )
    table.add(
        "spinal EpisodeWriter",
        percentile(spinal_us, 50),
        percentile(spinal_us, 99),
        percentile(spinal_sync_us, 50),
        percentile(spinal_sync_us, 99),
        percentile(spinal_us, 50) / max(percentile(plain_us, 50), 1e-9),
    )
    table.add(
        "plain file append + fsync",
        percentile(plain_us, 50),
        percentile(plain_us, 99),
        percentile(plain_sync_us, 50),
        percentile(plain_sync_us, 99),
        1.0,
    )
    table.notes += [
        "sync = write the open Arrow batch, flush and fsync data files, then append and fsync the indexes "
        "(done once a second by the recorder thread, never by the control loop).",
        "The spinal writer also CRCs every JPEG and batch so recovery can cut a torn tail; no JPEG is decoded.",
    ]
    return table
