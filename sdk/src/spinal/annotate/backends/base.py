"""What the annotation modules ask a labelling backend, and the interface every backend implements.

Modules build `LabelRequest`s; the OpenAI-compatible, manual and stub backends answer them with JSON objects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# The kinds of question a module asks; every backend answers them with the JSON shapes in `prompts.py`.
TASK_REPHRASINGS = "task_rephrasings"
SUBTASKS = "subtasks"
MEMORY = "memory"
INITIAL_SPEECH = "initial_speech"
INTERJECTION = "interjection"
VQA = "vqa"
REQUEST_KINDS = (TASK_REPHRASINGS, SUBTASKS, MEMORY, INITIAL_SPEECH, INTERJECTION, VQA)

Answer = dict[str, Any]


@dataclass
class LabelRequest:
    """One question for the backend: its kind, the episode, chat messages for a VLM, and the same facts as
    structured `context` (for backends that answer without reading prose). `check` returns what is wrong
    with an answer (None when it is usable), which a VLM backend feeds back in its corrective reprompt."""

    kind: str
    episode: int
    messages: list[dict[str, Any]]
    context: dict[str, Any]
    check: Callable[[Answer], str | None] | None = None


@dataclass
class BackendStats:
    """Counters a run reports: requests answered, corrective reprompts, JSON repairs, unusable answers."""

    requests: int = 0
    reprompts: int = 0
    repaired: int = 0
    unusable: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for key, value in deltas.items():
                setattr(self, key, getattr(self, key) + value)

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "reprompts": self.reprompts,
            "repaired": self.repaired,
            "unusable": self.unusable,
        }


class LabelBackend(Protocol):
    """Answers batches of label requests; an answer is a JSON object, or None when none was usable."""

    name: str
    stats: BackendStats
    wants_images: bool

    def identity(self) -> str:
        """What makes this backend's answers what they are (backend and model), for staging fingerprints."""
        ...

    def answer(self, requests: Sequence[LabelRequest]) -> list[Answer | None]:
        """Answers in request order; raises `BackendError` when the backend itself is unavailable."""
        ...

    def interjection_times(self, episode: int, boundaries: Sequence[float]) -> list[float] | None:
        """Episode times for interjections chosen by the backend (human labels), or None to let the module pick."""
        ...

    def supports(self, kind: str) -> bool:
        """Whether this backend can answer requests of `kind` at all."""
        ...

    def close(self) -> None: ...


def checked(request: LabelRequest, answer: Answer | None) -> Answer | None:
    """`answer` if it passes the request's check, else None."""
    if answer is None:
        return None
    if request.check is not None and request.check(answer) is not None:
        return None
    return answer
