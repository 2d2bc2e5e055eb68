"""Sampling frames with PyAV at exact episode timestamps, and tiling them into timestamped contact sheets."""

from __future__ import annotations

import numpy as np
import pytest
import simplejpeg
from spinal.annotate.errors import FramesError
from spinal.annotate.frames import contact_sheets, decode_frames
from spinal.annotate.synthetic import build_dataset
from spinal.language.v3_dataset import V3Dataset, VideoSpan

FRONT = "observation.images.front"


def _block_x(frame: np.ndarray) -> int:
    # The synthetic camera slides a yellow block left to right across the episode.
    row = frame[frame.shape[0] // 2]
    return int(np.argmax((row[:, 0] > 180) & (row[:, 1] > 150)))


@pytest.fixture
def episodes(tmp_path):
    ds = V3Dataset(build_dataset(tmp_path / "ds", episode_lengths=(20, 30), fps=10, width=96, height=64))
    return ds.episode(0), ds.episode(1)


def test_frames_come_from_the_right_episode_and_time(episodes):
    _, second = episodes
    times = [float(second.timestamps[i]) for i in (0, 10, 29)]
    frames = decode_frames(second.videos[FRONT], times)
    xs = [_block_x(f) for f in frames]
    assert xs[0] == 0 and xs[0] < xs[1] < xs[2]  # episode 1 starts again at the left edge
    assert all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for f in frames)


def test_frames_are_returned_in_request_order(episodes):
    first, _ = episodes
    forward = decode_frames(first.videos[FRONT], [0.0, 0.5, 1.5])
    shuffled = decode_frames(first.videos[FRONT], [1.5, 0.0, 0.5])
    assert [_block_x(f) for f in shuffled] == [_block_x(forward[i]) for i in (2, 0, 1)]


def test_missing_video_and_times_past_the_end_are_clear_errors(episodes, tmp_path):
    first, _ = episodes
    with pytest.raises(FramesError, match="missing"):
        decode_frames(VideoSpan(tmp_path / "nope.mp4", 0.0, 1.0), [0.0])
    with pytest.raises(FramesError, match="shorter than the data"):
        decode_frames(first.videos[FRONT], [60.0])


def test_contact_sheets_tile_frames_and_keep_their_times(episodes):
    first, _ = episodes
    times = [float(t) for t in first.timestamps[::2]]
    frames = decode_frames(first.videos[FRONT], times)
    sheets = contact_sheets(frames, times, tiles_per_sheet=4, columns=2)
    assert [len(s.timestamps) for s in sheets] == [4, 4, 2]
    assert sheets[0].timestamps == tuple(times[:4])
    image = simplejpeg.decode_jpeg(sheets[0].jpeg)
    assert image.shape[:2] == (2 * 64, 2 * 96)
    # The time label is burned into each tile's top-left corner: a black box with white glyph pixels.
    corner = image[:8, :40]
    assert corner.max() > 200 and corner.min() < 40
    assert sheets[0].data_url().startswith("data:image/jpeg;base64,")
