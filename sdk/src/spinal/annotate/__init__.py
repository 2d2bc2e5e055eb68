"""spinal.annotate: the pipeline that writes language annotations into a LeRobotDataset v3.

Modules (task_aug, subtasks + plan + memory, interjections + speech, VQA) ask a labelling backend (an
OpenAI-compatible VLM, human labels, or a deterministic stub), stage per episode, validate, then write.
"""

from spinal.annotate.errors import AnnotateError, BackendError, LabelsError, StagingError, ValidationFailed
from spinal.annotate.pipeline import AnnotationPipeline, RunSummary
from spinal.annotate.settings import AnnotateSettings

__all__ = [
    "AnnotateError",
    "AnnotateSettings",
    "AnnotationPipeline",
    "BackendError",
    "LabelsError",
    "RunSummary",
    "StagingError",
    "ValidationFailed",
]
