"""The error tree of `spinal.annotate`: one base class for everything the pipeline reports to a person.

Raised by the settings, backends, label files, staging and the validator; the CLI catches `AnnotateError`.
"""

from __future__ import annotations


class AnnotateError(Exception):
    """Base of every annotation-pipeline error."""


class SettingsError(AnnotateError):
    """The pipeline settings are inconsistent (e.g. a module enabled that the backend cannot label)."""


class BackendError(AnnotateError):
    """The labelling backend could not answer (endpoint unreachable or failing after retries)."""


class LabelsError(AnnotateError):
    """A human label file (YAML or CSV) is malformed; the message names the file, the entry and the fix."""


class StagingError(AnnotateError):
    """The staging folder is unusable, or merging shards found two different results for one episode."""


class FramesError(AnnotateError):
    """Frames could not be sampled from an episode's video (missing file, no camera, decode failure)."""


class ValidationFailed(AnnotateError):
    """Staged annotations broke the validator's rules; nothing was written."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} validation error(s); nothing was written:\n  {shown}{more}")
