"""interjections + speech: an acknowledgement at the first frame, then user interjections at subtask
boundaries, each with the robot's spoken reply; and plan_update, which re-emits the plan at each interjection.
"""

from __future__ import annotations

from spinal.annotate import prompts
from spinal.annotate.backends.base import INITIAL_SPEECH, INTERJECTION, LabelRequest
from spinal.annotate.job import EpisodeJob, numbered
from spinal.annotate.modules.base import Row
from spinal.annotate.settings import AnnotateSettings
from spinal.language.schema import LANGUAGE_EVENTS, LANGUAGE_PERSISTENT
from spinal.language.tools import speech_atom


def _speech(text: str, t: float) -> Row:
    return {**speech_atom(" ".join(text.split())), "timestamp": t}


def _subtasks(job: EpisodeJob) -> list[tuple[float, str]]:
    rows = job.staged.get("subtasks", [])
    return sorted((float(r["timestamp"]), str(r["content"])) for r in rows if r.get("style") == "subtask")


class InterjectionsModule:
    name = "interjections"
    column = LANGUAGE_EVENTS
    depends_on: tuple[str, ...] = ("subtasks",)
    kinds = (INITIAL_SPEECH, INTERJECTION)

    def enabled(self, settings: AnnotateSettings) -> bool:
        return settings.interjections.enabled

    def settings_fingerprint(self, settings: AnnotateSettings) -> str:
        return settings.interjections.fingerprint(str(settings.seed), str(settings.camera))

    def _times(self, job: EpisodeJob, subtasks: list[tuple[float, str]]) -> list[float]:
        cfg = job.settings.interjections
        boundaries = [t for t, _ in subtasks[1:] if t - job.times()[0] >= cfg.min_t]
        chosen = job.backend.interjection_times(job.episode, boundaries)
        if chosen is not None:
            first, last = job.times()[0], job.times()[-1]
            kept = sorted({job.snap(t) for t in chosen if t <= last + 0.5 and job.snap(t) > first})
            if len(kept) < len(chosen):
                job.warnings.append(
                    f"episode {job.episode}: {len(chosen) - len(kept)} labelled interjection(s) dropped: they fall "
                    f"on the first frame, past the end ({last:.2f}s), or on the same frame as another"
                )
            return kept
        rng = job.rng(self.name)
        return sorted(rng.sample(boundaries, min(cfg.max_per_episode, len(boundaries))))

    def run(self, job: EpisodeJob) -> list[Row]:
        cfg = job.settings.interjections
        t0 = job.times()[0]
        subtasks = _subtasks(job)
        requests: list[LabelRequest] = []
        hello = {"task": job.task}
        requests.append(
            LabelRequest(
                INITIAL_SPEECH, job.episode, prompts.initial_speech(hello), hello, prompts.check_field("say")
            )
        )
        times = self._times(job, subtasks) if subtasks else []
        for t in times:
            upcoming = [text for start, text in subtasks if start >= t]
            done = [text for start, text in subtasks if start < t]
            context = {
                "task": job.task,
                "t": round(t, 4),
                "next_subtask": upcoming[0] if upcoming else job.task,
                "previous_subtask": done[-1] if done else None,
            }
            around = [x for x in job.times() if abs(x - t) <= cfg.window_s / 2]
            step = max(1, len(around) // cfg.frames)
            messages = prompts.interjection(context, job.sheets(around[::step][: cfg.frames]))
            requests.append(
                LabelRequest(INTERJECTION, job.episode, messages, context, prompts.check_interjection)
            )
        answers = job.backend.answer(requests)
        rows: list[Row] = []
        if answers[0] is not None:
            rows.append(_speech(answers[0]["say"], t0))
        for t, answer in zip(times, answers[1:], strict=True):
            if answer is None:
                continue
            text = " ".join(str(answer["interjection"]).split())
            rows.append(
                {
                    "role": "user",
                    "content": text,
                    "style": "interjection",
                    "timestamp": t,
                    "camera": None,
                    "tool_calls": None,
                }
            )
            rows.append(_speech(answer["say"], t))
        return rows


class PlanUpdateModule:
    """A plan row at every interjection that lacks one, listing what is still to do at that time."""

    name = "plan_update"
    column = LANGUAGE_PERSISTENT
    depends_on: tuple[str, ...] = ("subtasks", "interjections")
    kinds: tuple[str, ...] = ()

    def enabled(self, settings: AnnotateSettings) -> bool:
        return settings.interjections.enabled and settings.subtasks.enabled

    def settings_fingerprint(self, settings: AnnotateSettings) -> str:
        return "plan_update/1"

    def run(self, job: EpisodeJob) -> list[Row]:
        subtasks = _subtasks(job)
        plan_times = {
            float(r["timestamp"]) for r in job.staged.get("subtasks", []) if r.get("style") == "plan"
        }
        rows: list[Row] = []
        for row in job.staged.get("interjections", []):
            t = float(row["timestamp"])
            if row.get("style") != "interjection" or t in plan_times or not subtasks:
                continue
            active = [i for i, (start, _) in enumerate(subtasks) if start <= t]
            first = active[-1] if active else 0
            remaining = [text for _, text in subtasks[first:]]
            rows.append(
                {
                    "role": "assistant",
                    "content": numbered(remaining),
                    "style": "plan",
                    "timestamp": t,
                    "camera": None,
                    "tool_calls": None,
                }
            )
            plan_times.add(t)
        return rows
