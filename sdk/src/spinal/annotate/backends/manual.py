"""Human labels as a backend: subtask spans, memories, interjections and task rephrasings from YAML or CSV.

`spinal annotate DATASET --backend manual --labels FILE` runs the same modules, staging and writer as a VLM run.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spinal.annotate.backends.base import (
    INITIAL_SPEECH,
    INTERJECTION,
    MEMORY,
    SUBTASKS,
    TASK_REPHRASINGS,
    Answer,
    BackendStats,
    LabelRequest,
    checked,
)
from spinal.annotate.errors import LabelsError

CSV_COLUMNS = ("episode", "kind", "start", "text", "say", "memory")
CSV_KINDS = ("subtask", "interjection", "task_rephrasing", "initial_say")


@dataclass
class SubtaskLabel:
    start: float
    text: str
    memory: str | None = None


@dataclass
class InterjectionLabel:
    t: float
    text: str
    say: str


@dataclass
class EpisodeLabels:
    """A person's labels for one episode."""

    subtasks: list[SubtaskLabel] = field(default_factory=list)
    interjections: list[InterjectionLabel] = field(default_factory=list)
    task_rephrasings: list[str] = field(default_factory=list)
    initial_say: str | None = None


def _text(value: Any, where: str, name: str, *, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise LabelsError(f"{where}: `{name}` is missing; give it a non-empty text.")
        return None
    if not isinstance(value, str):
        raise LabelsError(f"{where}: `{name}` must be text; got {value!r}.")
    return value.strip()


def _time(value: Any, where: str, name: str) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise LabelsError(f"{where}: `{name}` must be a time in seconds; got {value!r}.") from None
    if not math.isfinite(t) or t < 0:
        raise LabelsError(f"{where}: `{name}` must be a time in seconds >= 0; got {value!r}.")
    return t


def _episode(value: Any, where: str) -> int:
    try:
        ep = int(str(value).strip())
    except ValueError:
        raise LabelsError(f"{where}: episode must be an integer index; got {value!r}.") from None
    if ep < 0:
        raise LabelsError(f"{where}: episode must be >= 0; got {ep}.")
    return ep


def _from_yaml(path: Path) -> dict[int, EpisodeLabels]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LabelsError(f"{path} is not valid YAML: {exc}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("episodes"), dict):
        raise LabelsError(f"{path}: the top level needs an `episodes:` mapping of episode index to labels.")
    out: dict[int, EpisodeLabels] = {}
    for key, entry in data["episodes"].items():
        where = f"{path}: episode {key}"
        ep = _episode(key, where)
        if not isinstance(entry, dict):
            raise LabelsError(
                f"{where}: expected a mapping with subtasks/interjections/task_rephrasings/initial_say."
            )
        unknown = set(entry) - {"subtasks", "interjections", "task_rephrasings", "initial_say"}
        if unknown:
            raise LabelsError(f"{where}: unknown key(s) {sorted(unknown)}.")
        labels = EpisodeLabels(
            initial_say=_text(entry.get("initial_say"), where, "initial_say", required=False)
        )
        for i, item in enumerate(entry.get("subtasks") or []):
            w = f"{where}, subtask {i}"
            if not isinstance(item, dict):
                raise LabelsError(f"{w}: expected a mapping like {{start: 0.0, text: 'reach the cube'}}.")
            labels.subtasks.append(
                SubtaskLabel(
                    start=_time(item.get("start"), w, "start"),
                    text=_text(item.get("text"), w, "text") or "",
                    memory=_text(item.get("memory"), w, "memory", required=False),
                )
            )
        for i, item in enumerate(entry.get("interjections") or []):
            w = f"{where}, interjection {i}"
            if not isinstance(item, dict):
                raise LabelsError(
                    f"{w}: expected a mapping like {{t: 2.0, text: 'now the bowl', say: 'Sure.'}}."
                )
            labels.interjections.append(
                InterjectionLabel(
                    t=_time(item.get("t"), w, "t"),
                    text=_text(item.get("text"), w, "text") or "",
                    say=_text(item.get("say"), w, "say") or "",
                )
            )
        rephrasings = entry.get("task_rephrasings") or []
        if not isinstance(rephrasings, list):
            raise LabelsError(f"{where}: task_rephrasings must be a list of texts.")
        labels.task_rephrasings = [_text(r, where, "task_rephrasings") or "" for r in rephrasings]
        out[ep] = labels
    return out


def _from_csv(path: Path) -> dict[int, EpisodeLabels]:
    out: dict[int, EpisodeLabels] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"episode", "kind", "text"} - set(reader.fieldnames or [])
        if missing:
            raise LabelsError(
                f"{path}: missing CSV column(s) {sorted(missing)}; the header is {','.join(CSV_COLUMNS)}."
            )
        for line, row in enumerate(reader, start=2):
            where = f"{path}: line {line}"
            ep = _episode(row.get("episode"), where)
            labels = out.setdefault(ep, EpisodeLabels())
            kind = (row.get("kind") or "").strip()
            if kind == "subtask":
                labels.subtasks.append(
                    SubtaskLabel(
                        start=_time(row.get("start"), where, "start"),
                        text=_text(row.get("text"), where, "text") or "",
                        memory=_text(row.get("memory"), where, "memory", required=False),
                    )
                )
            elif kind == "interjection":
                labels.interjections.append(
                    InterjectionLabel(
                        t=_time(row.get("start"), where, "start"),
                        text=_text(row.get("text"), where, "text") or "",
                        say=_text(row.get("say"), where, "say") or "",
                    )
                )
            elif kind == "task_rephrasing":
                labels.task_rephrasings.append(_text(row.get("text"), where, "text") or "")
            elif kind == "initial_say":
                labels.initial_say = _text(row.get("text"), where, "text")
            else:
                raise LabelsError(f"{where}: kind {kind!r} is unknown; use one of {list(CSV_KINDS)}.")
    return out


def load_labels(path: str | Path) -> dict[int, EpisodeLabels]:
    """Labels per episode from a `.yaml`/`.yml` or `.csv` file; malformed entries raise `LabelsError`."""
    path = Path(path)
    if not path.is_file():
        raise LabelsError(f"Label file {path} does not exist; pass --labels with a YAML or CSV file.")
    if path.suffix.lower() in (".yaml", ".yml"):
        labels = _from_yaml(path)
    elif path.suffix.lower() == ".csv":
        labels = _from_csv(path)
    else:
        raise LabelsError(f"Label file {path} must end in .yaml, .yml or .csv.")
    for ep, entry in labels.items():
        entry.subtasks.sort(key=lambda s: s.start)
        entry.interjections.sort(key=lambda s: s.t)
        starts = [s.start for s in entry.subtasks]
        if len(set(starts)) != len(starts):
            raise LabelsError(
                f"{path}: episode {ep} has two subtasks with the same start; give each its own time."
            )
    return labels


def _nearest(items: Sequence[Any], t: float, attr: str) -> Any | None:
    if not items:
        return None
    best = min(items, key=lambda item: abs(getattr(item, attr) - t))
    return best if abs(getattr(best, attr) - t) <= 0.5 else None


def _in_window(t: float, ctx: dict[str, Any]) -> bool:
    """Whether a labelled time belongs to this prompt window; the first and last windows take the overhang."""
    if t < float(ctx["window_start"]):
        return ctx.get("window_index") == 0
    if t >= float(ctx["window_end"]):
        return bool(ctx.get("last_window", True))
    return True


class ManualBackend:
    """Answers from human labels; kinds the labels cannot answer (VQA) are not supported."""

    name = "manual"
    # Labels come from a person, so modules need not decode frames for prompts.
    wants_images = False

    def __init__(self, labels: dict[int, EpisodeLabels], *, source: str = "") -> None:
        self.labels = labels
        self.source = source
        self.stats = BackendStats()

    @classmethod
    def from_file(cls, path: str | Path) -> ManualBackend:
        return cls(load_labels(path), source=str(path))

    def identity(self) -> str:
        return f"manual/{self.source}"

    def supports(self, kind: str) -> bool:
        return kind in (TASK_REPHRASINGS, SUBTASKS, MEMORY, INITIAL_SPEECH, INTERJECTION)

    def interjection_times(self, episode: int, boundaries: Sequence[float]) -> list[float] | None:
        entry = self.labels.get(episode)
        return [i.t for i in entry.interjections] if entry else []

    def answer(self, requests: Sequence[LabelRequest]) -> list[Answer | None]:
        out = [checked(r, self._answer(r)) for r in requests]
        self.stats.add(requests=len(requests), unusable=sum(a is None for a in out))
        return out

    def _answer(self, request: LabelRequest) -> Answer | None:
        entry = self.labels.get(request.episode)
        if entry is None:
            return None
        ctx = request.context
        if request.kind == TASK_REPHRASINGS:
            return {"rephrasings": list(entry.task_rephrasings)}
        if request.kind == SUBTASKS:
            if not entry.subtasks:
                return None
            spans = [s for s in entry.subtasks if _in_window(s.start, ctx)]
            return {"subtasks": [{"start": s.start, "text": s.text} for s in spans]}
        if request.kind == MEMORY:
            label = _nearest(entry.subtasks, float(ctx["t"]), "start")
            return {"memory": label.memory} if label is not None and label.memory else None
        if request.kind == INITIAL_SPEECH:
            return {"say": entry.initial_say} if entry.initial_say else None
        if request.kind == INTERJECTION:
            label = _nearest(entry.interjections, float(ctx["t"]), "t")
            return {"interjection": label.text, "say": label.say} if label is not None else None
        return None

    def close(self) -> None:
        pass
