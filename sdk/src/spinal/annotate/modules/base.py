"""The interface of an annotation module: a name, the column its rows go to, its dependencies, and `run`.

Implemented by the task_aug, subtasks, interjections, plan_update and vqa modules; driven by the pipeline.
"""

from __future__ import annotations

from typing import Any, Protocol

from spinal.annotate.job import EpisodeJob
from spinal.annotate.settings import AnnotateSettings
from spinal.language.schema import LanguageColumn

Row = dict[str, Any]


class AnnotationModule(Protocol):
    name: str
    # Every row this module stages must route to this column (the validator checks it).
    column: LanguageColumn
    depends_on: tuple[str, ...]
    # Request kinds this module sends; a backend that cannot answer them makes enabling the module an error.
    kinds: tuple[str, ...]

    def enabled(self, settings: AnnotateSettings) -> bool: ...

    def settings_fingerprint(self, settings: AnnotateSettings) -> str: ...

    def run(self, job: EpisodeJob) -> list[Row]:
        """Rows for one episode; persistent and event rows both carry the `timestamp` of their frame."""
        ...
