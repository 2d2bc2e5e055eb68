"""A deterministic labelling backend: answers every request from its structured context, no model.

Used by tests, `--dry-run` (to show follow-up prompts) and the fake OpenAI-compatible server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from spinal.annotate.backends.base import (
    INITIAL_SPEECH,
    INTERJECTION,
    MEMORY,
    SUBTASKS,
    TASK_REPHRASINGS,
    VQA,
    Answer,
    BackendStats,
    LabelRequest,
    checked,
)

_PHRASES = (
    "please {task}",
    "could you {task}",
    "{task}, please",
    "I need you to {task}",
    "go ahead and {task}",
    "your job: {task}",
    "try to {task}",
    "{task} now",
    "time to {task}",
    "can you {task}",
)
_STEPS = (
    "reach toward the object",
    "grasp the object",
    "lift the object",
    "move to the target",
    "place the object",
    "release and retract",
)


def _number(*parts: Any, modulo: int = 1000) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % modulo


def stub_answer(kind: str, context: dict[str, Any]) -> Answer | None:
    """The stub's answer to one request, computed only from `kind` and `context`."""
    task = str(context.get("task") or "do the task").rstrip(".")
    if kind == TASK_REPHRASINGS:
        n = int(context.get("n", 3))
        return {"rephrasings": [p.format(task=task) for p in _PHRASES[:n]]}
    if kind == SUBTASKS:
        stamps = [float(t) for t in context.get("timestamps", [])]
        if not stamps:
            return {"subtasks": []}
        parts = min(3, len(stamps))
        base = int(context.get("window_index", 0)) * 3
        picks = [stamps[(len(stamps) * k) // parts] for k in range(parts)]
        return {
            "subtasks": [{"start": t, "text": _STEPS[(base + k) % len(_STEPS)]} for k, t in enumerate(picks)]
        }
    if kind == MEMORY:
        return {"memory": f"I finished the step: {context.get('completed_subtask', '')}."}
    if kind == INITIAL_SPEECH:
        return {"say": f"Okay, I will {task}."}
    if kind == INTERJECTION:
        nxt = context.get("next_subtask") or task
        return {"interjection": f"Now {nxt}, please.", "say": f"Sure, I will {nxt} now."}
    if kind == VQA:
        return _vqa_answer(str(context.get("question_type")), context)
    return None


def _vqa_answer(question_type: str, context: dict[str, Any]) -> Answer | None:
    seed = (context.get("camera"), context.get("t"))
    x, y = _number(*seed, "x", modulo=700), _number(*seed, "y", modulo=700)
    if question_type == "bbox":
        answer: dict[str, Any] = {"detections": [{"label": "yellow block", "bbox": [x, y, x + 200, y + 150]}]}
        question = "Where is the yellow block? Give its bounding box."
    elif question_type == "keypoint":
        answer = {"label": "yellow block", "point_format": "xy", "point": [x + 100, y + 75]}
        question = "Point at the centre of the yellow block."
    elif question_type == "count":
        answer = {"label": "yellow block", "count": 1}
        question = "How many yellow blocks are visible?"
    elif question_type == "attribute":
        answer = {"label": "block", "attribute": "color", "value": "yellow"}
        question = "What colour is the block?"
    elif question_type == "spatial":
        answer = {
            "subject": "yellow block",
            "relation": "left of" if x < 350 else "right of",
            "object": "image centre",
        }
        question = "Is the yellow block left or right of the image centre?"
    else:
        return None
    return {"question": question, "answer": answer}


class StubBackend:
    """Deterministic answers for every request kind; nothing leaves the process."""

    name = "stub"
    wants_images = True

    def __init__(self) -> None:
        self.stats = BackendStats()

    def identity(self) -> str:
        return "stub/v1"

    def supports(self, kind: str) -> bool:
        return True

    def answer(self, requests: Sequence[LabelRequest]) -> list[Answer | None]:
        out = [checked(r, stub_answer(r.kind, r.context)) for r in requests]
        self.stats.add(requests=len(requests), unusable=sum(a is None for a in out))
        return out

    def interjection_times(self, episode: int, boundaries: Sequence[float]) -> list[float] | None:
        return None

    def close(self) -> None:
        pass
