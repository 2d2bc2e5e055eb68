"""Video for LeRobotDataset v3 through PyAV: encode episodes, copy them into shared mp4 files, probe, decode.

Used by the converter's episode workers (encode), the dataset writer and merge (copy), validate and stats.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from spinal.dataset.errors import DatasetError, MergeError

# FFmpeg's own log lines would interleave with progress bars; errors still surface as exceptions.
logging.getLogger("libav").setLevel(logging.ERROR)

_ENCODERS = {"h264": "libx264", "av1": "libsvtav1"}


class VideoError(DatasetError):
    """A video cannot be encoded, read or copied."""


@dataclass(frozen=True)
class VideoSettings:
    """How episode videos are encoded: codec (`h264`, `av1` or `auto`), quality and keyframe spacing.

    `gop=2` matches LeRobot: a keyframe every other frame keeps random access cheap for training.
    `threads` is fixed (not derived from the CPU count) so identical input gives identical files.
    """

    codec: str = "auto"
    crf: int = 23
    gop: int = 2
    preset: str | None = None
    pix_fmt: str = "yuv420p"
    threads: int = 2

    def resolved(self) -> VideoSettings:
        """These settings with `auto` replaced by the best codec this PyAV build can encode."""
        return VideoSettings(
            resolve_codec(self.codec), self.crf, self.gop, self.preset, self.pix_fmt, self.threads
        )


def available_encoders() -> list[str]:
    """Which of the dataset codecs this PyAV/FFmpeg build can encode."""
    found = []
    for codec, encoder in _ENCODERS.items():
        try:
            av.codec.Codec(encoder, "w")
        except av.codec.codec.UnknownCodecError:
            continue
        found.append(codec)
    return found


def resolve_codec(codec: str) -> str:
    """`auto` -> h264 when libx264 is there, else av1; a named codec must be available."""
    found = available_encoders()
    if codec == "auto":
        if not found:
            raise VideoError(
                "this PyAV build encodes neither H.264 (libx264) nor AV1 (libsvtav1); reinstall av"
            )
        return found[0]
    if codec not in _ENCODERS:
        raise VideoError(f"video codec {codec!r} is not supported; use one of: auto, {', '.join(_ENCODERS)}")
    if codec not in found:
        raise VideoError(f"this PyAV build cannot encode {codec} ({_ENCODERS[codec]}); use --codec auto")
    return codec


def _encoder_options(settings: VideoSettings) -> dict[str, str]:
    options = {"g": str(settings.gop), "crf": str(settings.crf)}
    if settings.codec == "h264":
        options.update({"preset": settings.preset or "veryfast", "bf": "0", "threads": str(settings.threads)})
    else:
        options.update({"preset": settings.preset or "10", "svtav1-params": f"lp={settings.threads}"})
    return options


class EpisodeVideoEncoder:
    """Encodes one episode's frames (RGB arrays, one per data row) into an mp4 at a constant frame rate."""

    def __init__(self, path: Path, *, fps: int, width: int, height: int, settings: VideoSettings) -> None:
        if width % 2 or height % 2:
            raise VideoError(
                f"video frames must have an even width and height for yuv420p, got {width}x{height}"
            )
        self.path = Path(path)
        self._fps = fps
        self._count = 0
        self._container = av.open(str(self.path), "w")
        try:
            stream = self._container.add_stream(
                _ENCODERS[settings.codec], rate=fps, options=_encoder_options(settings)
            )
            stream.width, stream.height, stream.pix_fmt = width, height, settings.pix_fmt
            stream.codec_context.time_base = Fraction(1, fps)
        except Exception:
            self._container.close()
            raise
        self._stream = stream

    @property
    def frames(self) -> int:
        return self._count

    def add(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self._count
        frame.time_base = Fraction(1, self._fps)
        self._container.mux(self._stream.encode(frame))
        self._count += 1

    def close(self) -> None:
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()

    def abort(self) -> None:
        self._container.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class VideoSegment:
    """`frames` consecutive frames of an mp4 starting at `start_s` (one episode inside a video file)."""

    path: Path
    start_s: float
    frames: int


def _frame_ticks(stream: av.video.stream.VideoStream, fps: int) -> int:
    ticks = Fraction(1, fps) / stream.time_base
    if ticks.denominator != 1:
        raise VideoError(
            f"{stream.container.name}: time base {stream.time_base} cannot hold {fps} fps exactly"
        )
    return int(ticks)


def _segment_packets(container: Any, segment: VideoSegment, fps: int) -> Iterator[tuple[int, Any]]:
    """Yield (frame number within the segment, packet) for the segment's frames, by presentation time."""
    stream = container.streams.video[0]
    ticks = _frame_ticks(stream, fps)
    start = round(Fraction(segment.start_s).limit_denominator(1_000_000) / stream.time_base)
    start = round(start / ticks) * ticks
    if start > 0:
        container.seek(start, stream=stream, backward=True, any_frame=False)
    end = start + segment.frames * ticks
    for packet in container.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        if packet.pts < start - ticks // 2:
            continue
        if packet.pts >= end - ticks // 2:
            if packet.dts is not None and packet.dts >= end:
                break
            continue
        yield round((packet.pts - start) / ticks), packet


def segment_size(segment: VideoSegment, fps: int) -> int:
    """Bytes of compressed video the segment holds."""
    with av.open(str(segment.path)) as container:
        return sum(packet.size for _, packet in _segment_packets(container, segment, fps))


class VideoFileAppender:
    """Builds one dataset video file by copying episode segments one after another, without re-encoding."""

    def __init__(self, path: Path, fps: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fps = fps
        self._container = av.open(str(self.path), "w", options={"movflags": "faststart"})
        self._stream = None
        self._extradata: bytes | None = None
        self._codec: tuple[str, int, int, str] | None = None
        self.frames = 0
        self.bytes = 0

    def accepts(self, segment: VideoSegment) -> bool:
        """Whether the segment's stream parameters match this file's (else it needs a new file)."""
        if self._stream is None:
            return True
        with av.open(str(segment.path)) as container:
            stream = container.streams.video[0]
            return (
                self._signature(stream) == self._codec and self._stream_extradata(stream) == self._extradata
            )

    def append(self, segment: VideoSegment) -> float:
        """Copy the segment to the end of this file; returns the time (s) at which it starts here."""
        starts_at = self.frames / self._fps
        with av.open(str(segment.path)) as container:
            source = container.streams.video[0]
            if self._stream is None:
                self._stream = self._container.add_stream_from_template(source)
                self._stream.time_base = source.time_base
                self._codec = self._signature(source)
                self._extradata = self._stream_extradata(source)
            elif self._signature(source) != self._codec:
                raise MergeError(
                    f"{segment.path} is {self._signature(source)}, this video file is {self._codec}"
                )
            ticks = _frame_ticks(source, self._fps)
            offset = self.frames * ticks
            start = None
            copied = set()
            for frame_number, packet in _segment_packets(container, segment, self._fps):
                if start is None:
                    if not packet.is_keyframe:
                        raise MergeError(
                            f"{segment.path}: the episode at {segment.start_s:.3f}s does not start on a keyframe, "
                            "so it cannot be copied without re-encoding"
                        )
                    start = packet.pts - frame_number * ticks
                shift = offset - start
                packet.pts += shift
                if packet.dts is not None:
                    packet.dts += shift
                packet.duration = ticks
                packet.stream = self._stream
                self.bytes += packet.size
                copied.add(frame_number)
                self._container.mux(packet)
        if len(copied) != segment.frames:
            raise VideoError(
                f"{segment.path}: expected {segment.frames} frames from {segment.start_s:.3f}s, found {len(copied)}"
            )
        self.frames += segment.frames
        return starts_at

    def close(self) -> None:
        self._container.close()

    @staticmethod
    def _signature(stream: Any) -> tuple[str, int, int, str]:
        return (stream.codec_context.name, stream.width, stream.height, str(stream.pix_fmt))

    @staticmethod
    def _stream_extradata(stream: Any) -> bytes:
        return bytes(stream.codec_context.extradata or b"")


def video_info(path: Path) -> dict[str, Any]:
    """The `info` block LeRobot keeps for a video feature in info.json."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pix_fmt = str(stream.pix_fmt)
        info = {
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec.canonical_name,
            "video.pix_fmt": pix_fmt,
            "video.is_depth_map": False,
            "video.fps": int(stream.base_rate or stream.average_rate),
            "video.channels": 1
            if "gray" in pix_fmt
            else 4
            if ("rgba" in pix_fmt or "yuva" in pix_fmt)
            else 3,
            "has_audio": len(container.streams.audio) > 0,
        }
    return info


@dataclass(frozen=True)
class PacketTimes:
    """Presentation times (s) and keyframe flags of every video packet, sorted by time."""

    times: np.ndarray
    keyframes: np.ndarray
    codec: str
    width: int
    height: int
    pix_fmt: str


def packet_times(path: Path) -> PacketTimes:
    """Demux (no decode) a video file and list its frames' presentation times."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        pts, keys = [], []
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            pts.append(packet.pts)
            keys.append(packet.is_keyframe)
        order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
        times = np.asarray(pts, dtype=np.int64)[order].astype(np.float64) * float(base)
        return PacketTimes(
            times,
            np.asarray(keys, dtype=bool)[order],
            stream.codec.canonical_name,
            stream.width,
            stream.height,
            str(stream.pix_fmt),
        )


def decode_frames(path: Path, start_s: float, count: int, fps: int) -> Iterator[tuple[float, np.ndarray]]:
    """Decode `count` frames from `start_s` on, yielding (time in the file, HxWx3 uint8 RGB)."""
    tolerance = 0.5 / fps
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if start_s > 0:
            container.seek(
                round(start_s / float(stream.time_base)), stream=stream, backward=True, any_frame=False
            )
        produced = 0
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * stream.time_base)
            if t < start_s - tolerance:
                continue
            yield t, frame.to_ndarray(format="rgb24")
            produced += 1
            if produced >= count:
                return
