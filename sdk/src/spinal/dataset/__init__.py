"""spinal.dataset: LeRobotDataset v3.0 — convert recordings, read, validate, merge, stats, plot, push.

The `spinal dataset ...` commands call these functions; each module is one of those steps.
"""

from spinal.dataset.convert import ConvertOptions, ConvertReport, convert_recordings
from spinal.dataset.errors import (
    ConversionError,
    DatasetError,
    DatasetFormatError,
    EpisodeConversionError,
    MergeError,
    PushError,
)
from spinal.dataset.info import dataset_info
from spinal.dataset.merge import MergeReport, merge_datasets
from spinal.dataset.reader import DatasetReader
from spinal.dataset.recompute import recompute_stats
from spinal.dataset.validate import ValidationReport, Violation, validate_dataset
from spinal.dataset.video import VideoSettings, available_encoders

__all__ = [
    "ConversionError",
    "ConvertOptions",
    "ConvertReport",
    "DatasetError",
    "DatasetFormatError",
    "DatasetReader",
    "EpisodeConversionError",
    "MergeError",
    "MergeReport",
    "PushError",
    "ValidationReport",
    "VideoSettings",
    "Violation",
    "available_encoders",
    "convert_recordings",
    "dataset_info",
    "merge_datasets",
    "recompute_stats",
    "validate_dataset",
]
