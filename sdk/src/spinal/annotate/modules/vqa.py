"""VQA: at each emission tick, one question and a JSON answer per camera, about exactly that frame.

Rows are `vqa` events tagged with the camera; answers use the shapes and 0-1000 coordinates in `prompts`.
"""

from __future__ import annotations

import json

from spinal.annotate import prompts
from spinal.annotate.backends.base import VQA, LabelRequest
from spinal.annotate.job import EpisodeJob
from spinal.annotate.modules.base import Row
from spinal.annotate.settings import AnnotateSettings
from spinal.language.schema import LANGUAGE_EVENTS


class VqaModule:
    name = "vqa"
    column = LANGUAGE_EVENTS
    depends_on: tuple[str, ...] = ()
    kinds = (VQA,)

    def enabled(self, settings: AnnotateSettings) -> bool:
        return settings.vqa.enabled

    def settings_fingerprint(self, settings: AnnotateSettings) -> str:
        return settings.vqa.fingerprint(str(settings.seed))

    def run(self, job: EpisodeJob) -> list[Row]:
        cfg = job.settings.vqa
        ticks = job.sample_times(cfg.emission_hz)
        kinds = [job.rng(self.name, i).choice(cfg.question_types) for i in range(len(ticks))]
        requests: list[LabelRequest] = []
        keys: list[tuple[float, str]] = []
        for camera in job.vqa_cameras:
            urls = job.frame_urls(camera, ticks)
            for t, kind, url in zip(ticks, kinds, urls, strict=True):
                context = {"task": job.task, "camera": camera, "t": round(t, 4), "question_type": kind}
                requests.append(
                    LabelRequest(
                        VQA, job.episode, prompts.vqa(context, url), context, prompts.check_vqa(kind)
                    )
                )
                keys.append((t, camera))
        rows: list[Row] = []
        dropped = 0
        for (t, camera), answer in zip(keys, job.backend.answer(requests), strict=True):
            if answer is None:
                dropped += 1
                continue
            question = " ".join(str(answer["question"]).split())
            rows.append(
                {
                    "role": "user",
                    "content": question,
                    "style": "vqa",
                    "timestamp": t,
                    "camera": camera,
                    "tool_calls": None,
                }
            )
            rows.append(
                {
                    "role": "assistant",
                    "content": json.dumps(answer["answer"], sort_keys=True),
                    "style": "vqa",
                    "timestamp": t,
                    "camera": camera,
                    "tool_calls": None,
                }
            )
        if dropped:
            job.warnings.append(
                f"episode {job.episode}: {dropped} VQA item(s) had no usable answer and were skipped"
            )
        return rows
