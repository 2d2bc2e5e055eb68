"""Errors of the dataset tools: one tree under `DatasetError`.

Raised by `spinal.dataset` (convert, read, validate, merge, stats, plot, push); the CLI maps them to exit codes.
"""

from __future__ import annotations


class DatasetError(Exception):
    """Base class of every error raised by `spinal.dataset`."""


class ConversionError(DatasetError):
    """A conversion cannot run at all (bad output folder, no usable episode, inconsistent recordings)."""


class EpisodeConversionError(DatasetError):
    """One recorded episode cannot be converted; the others still are."""


class DatasetFormatError(DatasetError):
    """A dataset on disk does not follow the LeRobotDataset v3.0 layout closely enough to be read."""


class MergeError(DatasetError):
    """Datasets cannot be merged (different fps, features, codecs, or a video that cannot be copied)."""


class PushError(DatasetError):
    """A dataset cannot be uploaded to the Hugging Face Hub (missing dependency, invalid dataset, Hub error)."""
