"""task_aug: the episode's task plus rephrasings, as `user` rows at the first frame.

Recipes rotate `${task}` through them by sample index, so a policy does not overfit one wording.
"""

from __future__ import annotations

from spinal.annotate import prompts
from spinal.annotate.backends.base import TASK_REPHRASINGS, LabelRequest
from spinal.annotate.job import EpisodeJob
from spinal.annotate.modules.base import Row
from spinal.annotate.settings import AnnotateSettings
from spinal.language.schema import LANGUAGE_PERSISTENT


def _norm(text: str) -> str:
    return " ".join(text.lower().strip().rstrip(".!").split())


class TaskAugModule:
    name = "task_aug"
    column = LANGUAGE_PERSISTENT
    depends_on: tuple[str, ...] = ()
    kinds = (TASK_REPHRASINGS,)

    def enabled(self, settings: AnnotateSettings) -> bool:
        return settings.task_aug.enabled

    def settings_fingerprint(self, settings: AnnotateSettings) -> str:
        return settings.task_aug.fingerprint()

    def run(self, job: EpisodeJob) -> list[Row]:
        task = job.task.strip()
        if not task:
            job.warnings.append(f"episode {job.episode}: no task in meta/tasks.parquet; task_aug skipped")
            return []
        texts = [task]
        n = job.settings.task_aug.n_rephrasings
        if n > 0:
            context = {"task": task, "n": n}
            request = LabelRequest(
                TASK_REPHRASINGS,
                job.episode,
                prompts.task_rephrasings(context),
                context,
                prompts.check_rephrasings,
            )
            answer = job.backend.answer([request])[0]
            seen = {_norm(task)}
            for text in (answer or {}).get("rephrasings", []):
                if _norm(text) not in seen and len(texts) <= n:
                    seen.add(_norm(text))
                    texts.append(text.strip())
        t0 = job.times()[0]
        return [
            {
                "role": "user",
                "content": text,
                "style": "task_aug",
                "timestamp": t0,
                "camera": None,
                "tool_calls": None,
            }
            for text in texts
        ]
