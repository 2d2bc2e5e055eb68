"""subtasks + plan + memory: segment the episode into subtasks from timestamped contact sheets, then derive
the plan at every subtask start and ask for a first-person memory at every boundary after the first.
"""

from __future__ import annotations

from spinal.annotate import prompts
from spinal.annotate.backends.base import MEMORY, SUBTASKS, LabelRequest
from spinal.annotate.job import EpisodeJob, numbered
from spinal.annotate.modules.base import Row
from spinal.annotate.settings import AnnotateSettings
from spinal.language.schema import LANGUAGE_PERSISTENT


def _row(style: str, content: str, t: float) -> Row:
    return {
        "role": "assistant",
        "content": content,
        "style": style,
        "timestamp": t,
        "camera": None,
        "tool_calls": None,
    }


def stitch_subtasks(job: EpisodeJob, spans: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """A gap-free cover: first start at the first frame, starts on frames, each on its own frame, no repeats."""
    times = job.times()
    out: list[tuple[float, str]] = []
    for start, text in sorted(spans, key=lambda s: s[0]):
        text = " ".join(text.split())
        if out and text.lower() == out[-1][1].lower():
            continue  # the same subtask reported on both sides of a window edge
        t = times[0] if not out else job.snap(start)
        if out and t <= out[-1][0]:
            # Two starts on one frame would make active_at ambiguous: move this one to the next free frame.
            later = [x for x in times if x > out[-1][0]]
            if not later:
                continue
            t = later[0]
        out.append((t, text))
    return out


class SubtasksModule:
    name = "subtasks"
    column = LANGUAGE_PERSISTENT
    depends_on: tuple[str, ...] = ()
    kinds = (SUBTASKS, MEMORY)

    def enabled(self, settings: AnnotateSettings) -> bool:
        return settings.subtasks.enabled

    def settings_fingerprint(self, settings: AnnotateSettings) -> str:
        return settings.subtasks.fingerprint(str(settings.camera))

    def requests(self, job: EpisodeJob) -> list[LabelRequest]:
        cfg = job.settings.subtasks
        samples = job.sample_times(cfg.frames_per_second)
        chunks = [
            samples[i : i + cfg.max_frames_per_prompt]
            for i in range(0, len(samples), cfg.max_frames_per_prompt)
        ]
        end = job.times()[-1]
        out = []
        for w, chunk in enumerate(chunks):
            last = w == len(chunks) - 1
            context = {
                "task": job.task,
                "window_index": w,
                "window_start": round(chunk[0], 4),
                "window_end": round(end if last else chunks[w + 1][0], 4),
                "last_window": last,
                "timestamps": [round(t, 4) for t in chunk],
            }
            messages = prompts.subtasks(context, job.sheets(chunk))
            out.append(LabelRequest(SUBTASKS, job.episode, messages, context, prompts.check_subtasks))
        return out

    def run(self, job: EpisodeJob) -> list[Row]:
        requests = self.requests(job)
        spans: list[tuple[float, str]] = []
        for request, answer in zip(requests, job.backend.answer(requests), strict=True):
            if answer is None:
                job.warnings.append(
                    f"episode {job.episode}: no usable subtasks for window {request.context['window_index']}"
                )
                continue
            lo, hi = request.context["window_start"], request.context["window_end"]
            for item in answer["subtasks"]:
                spans.append((min(max(float(item["start"]), lo), hi), str(item["text"])))
        subtasks = stitch_subtasks(job, spans)
        if not subtasks:
            job.warnings.append(f"episode {job.episode}: no subtasks; plan and memory skipped")
            return []
        texts = [text for _, text in subtasks]
        rows: list[Row] = []
        for i, (t, text) in enumerate(subtasks):
            rows.append(_row("subtask", text, t))
            rows.append(_row("plan", numbered(texts[i:]), t))
        if job.settings.subtasks.emit_memory:
            rows.extend(self._memories(job, subtasks))
        return rows

    def _memories(self, job: EpisodeJob, subtasks: list[tuple[float, str]]) -> list[Row]:
        rows: list[Row] = []
        memory = ""
        # Sequential on purpose: each memory builds on the one before it.
        for i in range(1, len(subtasks)):
            t = subtasks[i][0]
            context = {
                "task": job.task,
                "t": round(t, 4),
                "prior_memory": memory,
                "completed_subtask": subtasks[i - 1][1],
                "remaining_subtasks": [s for _, s in subtasks[i:]],
            }
            request = LabelRequest(
                MEMORY, job.episode, prompts.memory(context), context, prompts.check_field("memory")
            )
            answer = job.backend.answer([request])[0]
            if answer is None:
                continue
            memory = " ".join(str(answer["memory"]).split())
            rows.append(_row("memory", memory, t))
        return rows
