"""Frames for prompts: decode an episode's frames at exact timestamps with PyAV, and tile them into
timestamped JPEG contact sheets. Used by the subtask, interjection and VQA modules.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import av
import numpy as np
import simplejpeg

from spinal.annotate.errors import FramesError
from spinal.language.v3_dataset import VideoSpan

# libav decoders are not all safe to drive from many threads at once; episodes decode one at a time.
_DECODE_LOCK = threading.Lock()

# A 3x5 bitmap font for the characters a timestamp label needs.
_GLYPHS = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "010", "010", "010"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    ".": ("000", "000", "000", "000", "010"),
    "s": ("000", "111", "110", "011", "111"),
    "t": ("010", "111", "010", "010", "011"),
    "=": ("000", "111", "000", "111", "000"),
    " ": ("000", "000", "000", "000", "000"),
}


@dataclass(frozen=True)
class ContactSheet:
    """A JPEG grid of frames, each labelled with its episode timestamp (row-major order)."""

    jpeg: bytes
    timestamps: tuple[float, ...]

    def data_url(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg).decode("ascii")


def decode_frames(span: VideoSpan, timestamps: Sequence[float]) -> list[np.ndarray]:
    """RGB frames (H, W, 3 uint8) of one episode at episode-relative `timestamps`, nearest decoded frame."""
    if not span.path.is_file():
        raise FramesError(
            f"Video file {span.path} is missing; re-convert the dataset or fix its videos/ folder."
        )
    if not timestamps:
        return []
    order = sorted(range(len(timestamps)), key=lambda i: timestamps[i])
    targets = [span.from_timestamp + float(timestamps[i]) for i in order]
    picked: list[np.ndarray | None] = [None] * len(targets)
    with _DECODE_LOCK:
        try:
            with av.open(str(span.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                if stream.time_base is not None and targets[0] > 0:
                    container.seek(
                        int(targets[0] / stream.time_base), stream=stream, backward=True, any_frame=False
                    )
                _pick_frames(container.decode(stream), targets, picked)
        except av.FFmpegError as exc:
            raise FramesError(f"Cannot decode {span.path}: {exc}.") from None
    if any(p is None for p in picked):
        missing = [round(targets[i] - span.from_timestamp, 3) for i, p in enumerate(picked) if p is None]
        raise FramesError(
            f"{span.path} has no frames at episode times {missing[:5]}; the video is shorter than the data."
        )
    out: list[np.ndarray] = [np.empty(0)] * len(timestamps)
    for rank, i in enumerate(order):
        out[i] = picked[rank]  # type: ignore[assignment]
    return out


def _pick_frames(frames, targets: list[float], picked: list[np.ndarray | None]) -> None:
    """Walk decoded frames once, keeping for each target the frame whose time is nearest to it."""
    nxt = 0
    prev_time: float | None = None
    prev_frame = None
    for frame in frames:
        if frame.time is None:
            continue
        ft = float(frame.time)
        while nxt < len(targets) and ft >= targets[nxt] - 1e-6:
            if (
                prev_frame is not None
                and prev_time is not None
                and targets[nxt] - prev_time < ft - targets[nxt]
            ):
                picked[nxt] = prev_frame.to_ndarray(format="rgb24")
            else:
                picked[nxt] = frame.to_ndarray(format="rgb24")
            nxt += 1
        if nxt >= len(targets):
            return
        prev_time, prev_frame = ft, frame
    # Targets past the last frame (float rounding at the very end) take the last frame when it is close.
    while (
        nxt < len(targets)
        and prev_frame is not None
        and prev_time is not None
        and targets[nxt] - prev_time < 0.5
    ):
        picked[nxt] = prev_frame.to_ndarray(format="rgb24")
        nxt += 1


def _resize(frame: np.ndarray, width: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if w <= width:
        return frame
    height = max(1, round(h * width / w))
    rows = (np.arange(height) * h / height).astype(int)
    cols = (np.arange(width) * w / width).astype(int)
    return frame[rows][:, cols]


def _draw_label(tile: np.ndarray, text: str, scale: int) -> None:
    """Burn `text` into the tile's top-left corner: white glyphs on a black box, readable at any tile size."""
    glyph_w, glyph_h = 4 * scale, 6 * scale
    box_w = min(tile.shape[1], glyph_w * len(text) + scale)
    box_h = min(tile.shape[0], glyph_h + scale)
    tile[:box_h, :box_w] = 0
    for n, ch in enumerate(text):
        glyph = _GLYPHS.get(ch, _GLYPHS[" "])
        for r, line in enumerate(glyph):
            for c, bit in enumerate(line):
                if bit == "1":
                    y, x = scale + r * scale, scale + n * glyph_w + c * scale
                    tile[y : y + scale, x : x + scale] = 255


def contact_sheets(
    frames: Sequence[np.ndarray],
    timestamps: Sequence[float],
    *,
    tiles_per_sheet: int = 12,
    columns: int = 4,
    tile_width: int = 320,
    quality: int = 80,
) -> list[ContactSheet]:
    """Tile frames into sheets of `tiles_per_sheet`, each tile labelled `t=1.50s`."""
    if len(frames) != len(timestamps):
        raise FramesError("contact_sheets needs one timestamp per frame.")
    sheets: list[ContactSheet] = []
    for start in range(0, len(frames), tiles_per_sheet):
        chunk = [_resize(f, tile_width) for f in frames[start : start + tiles_per_sheet]]
        stamps = tuple(float(t) for t in timestamps[start : start + tiles_per_sheet])
        th = max(f.shape[0] for f in chunk)
        tw = max(f.shape[1] for f in chunk)
        cols = min(columns, len(chunk))
        rows = (len(chunk) + cols - 1) // cols
        sheet = np.full((rows * th, cols * tw, 3), 32, dtype=np.uint8)
        scale = max(1, tw // 110)
        for i, (tile, t) in enumerate(zip(chunk, stamps, strict=True)):
            tile = np.ascontiguousarray(tile[:, :, :3]).copy()
            _draw_label(tile, f"t={t:.2f}s", scale)
            r, c = divmod(i, cols)
            sheet[r * th : r * th + tile.shape[0], c * tw : c * tw + tile.shape[1]] = tile
        jpeg = simplejpeg.encode_jpeg(np.ascontiguousarray(sheet), quality=quality, colorspace="RGB")
        sheets.append(ContactSheet(jpeg=jpeg, timestamps=stamps))
    return sheets


def single_frame_jpeg(frame: np.ndarray, *, width: int = 640, quality: int = 85) -> str:
    """One frame as a JPEG data URL (VQA asks about exactly one frame)."""
    jpeg = simplejpeg.encode_jpeg(
        np.ascontiguousarray(_resize(frame, width)[:, :, :3]), quality=quality, colorspace="RGB"
    )
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
