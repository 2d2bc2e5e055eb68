"""Feature statistics as LeRobot stores them: per episode, then aggregated over the dataset.

Vectors get min/max/mean/std/count/quantiles per dimension; images get per-channel values (3,1,1) in [0, 1]
from exact 256-bin histograms of sampled frames, so memory stays constant however long an episode is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from spinal.dataset.layout import QUANTILES, STAT_NAMES

Stats = dict[str, np.ndarray]
FeatureStats = dict[str, Stats]


def estimate_num_samples(length: int, minimum: int = 100, maximum: int = 10_000, power: float = 0.75) -> int:
    """How many frames of an episode to sample for image statistics (grows sub-linearly, as LeRobot does)."""
    if length < minimum:
        minimum = length
    return max(minimum, min(int(length**power), maximum))


def sample_positions(length: int) -> np.ndarray:
    """Evenly spread frame positions to sample for image statistics (sorted, unique)."""
    if length <= 0:
        return np.zeros(0, dtype=np.int64)
    count = estimate_num_samples(length)
    return np.unique(np.round(np.linspace(0, length - 1, count)).astype(np.int64))


def vector_stats(values: np.ndarray) -> Stats:
    """Statistics of a (frames,) or (frames, dims) array; integer min/max keep their integer type."""
    array = np.asarray(values)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if len(array) == 0:
        raise ValueError("statistics need at least one frame")
    as_float = array.astype(np.float64)
    stats: Stats = {
        "min": array.min(axis=0),
        "max": array.max(axis=0),
        "mean": as_float.mean(axis=0),
        "std": as_float.std(axis=0),
        "count": np.array([len(array)], dtype=np.int64),
    }
    for key, q in QUANTILES.items():
        stats[key] = np.quantile(as_float, q, axis=0)
    if not np.issubdtype(array.dtype, np.integer):
        stats["min"] = stats["min"].astype(np.float64)
        stats["max"] = stats["max"].astype(np.float64)
    return stats


class ImageStatsAccumulator:
    """Per-channel statistics of RGB frames from 256-bin histograms (exact for 8-bit pixels)."""

    def __init__(self, target_size: int = 150, downsample_threshold: int = 300) -> None:
        self._hist = np.zeros((3, 256), dtype=np.int64)
        self._frames = 0
        self._target = target_size
        self._threshold = downsample_threshold

    @property
    def frames(self) -> int:
        return self._frames

    def add(self, rgb: np.ndarray) -> None:
        """Add one HxWx3 uint8 frame (downsampled by a stride when large, as LeRobot does)."""
        height, width = rgb.shape[:2]
        if max(height, width) >= self._threshold:
            step = max(1, int((width if width > height else height) / self._target))
            rgb = rgb[::step, ::step]
        for channel in range(3):
            self._hist[channel] += np.bincount(rgb[..., channel].ravel(), minlength=256)
        self._frames += 1

    def result(self) -> Stats:
        if self._frames == 0:
            raise ValueError("image statistics need at least one sampled frame")
        values = np.arange(256, dtype=np.float64)
        total = self._hist.sum(axis=1).astype(np.float64)
        mean = (self._hist * values).sum(axis=1) / total
        var = np.maximum((self._hist * values**2).sum(axis=1) / total - mean**2, 0.0)
        nonzero = self._hist > 0
        minimum = np.array([values[np.argmax(row)] for row in nonzero])
        maximum = np.array([values[255 - np.argmax(row[::-1])] for row in nonzero])
        stats: Stats = {
            "min": minimum,
            "max": maximum,
            "mean": mean,
            "std": np.sqrt(var),
            "count": np.array([self._frames], dtype=np.int64),
        }
        for key, q in QUANTILES.items():
            stats[key] = np.array([_histogram_quantile(row, q) for row in self._hist])
        return {
            key: value if key == "count" else (value / 255.0).reshape(3, 1, 1) for key, value in stats.items()
        }


def _histogram_quantile(hist: np.ndarray, q: float) -> float:
    """numpy's linear-interpolation quantile of the samples a histogram of integer values describes."""
    cumulative = np.cumsum(hist)
    n = int(cumulative[-1])
    position = q * (n - 1)
    lower = int(np.floor(position))
    frac = position - lower
    v_lo = int(np.searchsorted(cumulative, lower, side="right"))
    v_hi = int(np.searchsorted(cumulative, min(lower + 1, n - 1), side="right"))
    return v_lo + frac * (v_hi - v_lo)


def aggregate(stats_list: Iterable[FeatureStats]) -> FeatureStats:
    """Dataset statistics from per-episode ones: counts weight means, variances and quantiles (as LeRobot)."""
    per_feature: dict[str, list[Stats]] = {}
    for episode_stats in stats_list:
        for key, stats in episode_stats.items():
            per_feature.setdefault(key, []).append(stats)
    return {key: _aggregate_feature(items) for key, items in per_feature.items()}


def _aggregate_feature(items: list[Stats]) -> Stats:
    means = np.stack([np.asarray(s["mean"], dtype=np.float64) for s in items])
    variances = np.stack([np.asarray(s["std"], dtype=np.float64) ** 2 for s in items])
    counts = np.stack([np.asarray(s["count"], dtype=np.int64) for s in items])
    total = counts.sum(axis=0)
    weights = counts.astype(np.float64)
    while weights.ndim < means.ndim:
        weights = weights[..., np.newaxis]
    mean = (means * weights).sum(axis=0) / total
    variance = ((variances + (means - mean) ** 2) * weights).sum(axis=0) / total
    out: Stats = {
        "min": np.min(np.stack([np.asarray(s["min"]) for s in items]), axis=0),
        "max": np.max(np.stack([np.asarray(s["max"]) for s in items]), axis=0),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": total,
    }
    for key in QUANTILES:
        if all(key in s for s in items):
            values = np.stack([np.asarray(s[key], dtype=np.float64) for s in items])
            out[key] = (values * weights).sum(axis=0) / total
    return out


def to_jsonable(stats: FeatureStats) -> dict[str, dict[str, Any]]:
    """Nested lists (ints stay ints), in the stat order LeRobot writes."""
    return {
        key: {name: np.asarray(value).tolist() for name, value in _ordered(feature).items()}
        for key, feature in stats.items()
    }


def from_jsonable(payload: dict[str, dict[str, Any]]) -> FeatureStats:
    return {
        key: {name: np.asarray(value) for name, value in feature.items()} for key, feature in payload.items()
    }


def _ordered(stats: Stats) -> Stats:
    known = {name: stats[name] for name in STAT_NAMES if name in stats}
    known.update({name: value for name, value in stats.items() if name not in known})
    return known
