"""The annotation modules, in the order the pipeline runs them for each episode.

Each module turns backend answers into language rows for one episode; see `spinal.annotate.modules.base`.
"""

from spinal.annotate.modules.base import AnnotationModule
from spinal.annotate.modules.interjections import InterjectionsModule, PlanUpdateModule
from spinal.annotate.modules.subtasks import SubtasksModule
from spinal.annotate.modules.task_aug import TaskAugModule
from spinal.annotate.modules.vqa import VqaModule

MODULES: tuple[AnnotationModule, ...] = (
    TaskAugModule(),
    SubtasksModule(),
    InterjectionsModule(),
    PlanUpdateModule(),
    VqaModule(),
)
MODULE_NAMES: tuple[str, ...] = tuple(m.name for m in MODULES)

__all__ = ["MODULES", "MODULE_NAMES", "AnnotationModule"]
