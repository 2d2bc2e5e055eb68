"""The chat prompts the modules send to a VLM, one builder per request kind, and the checks on replies.

Every prompt states its kind (`TASK: ...`) and its facts as one `Context: {json}` line, so replies can be
checked and so a test server can answer without a model. Used by the modules and `--dry-run`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from spinal.annotate.frames import ContactSheet

SYSTEM = (
    "You label robot demonstration videos for training a robot policy. The robot is a single arm seen by "
    "one or more cameras. Describe only what is visible. Always reply with one JSON object and nothing else."
)

_SHAPES = {
    "task_rephrasings": '{"rephrasings": ["...", "..."]}',
    "subtasks": '{"subtasks": [{"start": <seconds>, "text": "<imperative phrase>"}, ...]}',
    "memory": '{"memory": "<one sentence>"}',
    "initial_speech": '{"say": "<one short sentence>"}',
    "interjection": '{"interjection": "<what the user says>", "say": "<what the robot answers>"}',
    "vqa": '{"question": "<question>", "answer": <answer object>}',
}

VQA_ANSWER_HELP = {
    "bbox": '{"detections": [{"label": "<object>", "bbox": [x1, y1, x2, y2]}]} (at most 3, tight boxes; [] if none)',
    "keypoint": '{"label": "<object>", "point_format": "xy", "point": [x, y]}',
    "count": '{"label": "<object>", "count": <integer>}',
    "attribute": '{"label": "<object>", "attribute": "<attribute>", "value": "<value>"}',
    "spatial": '{"subject": "<object>", "relation": "<relation>", "object": "<object>"}',
}


def _text_block(kind: str, instructions: str, context: dict[str, Any]) -> dict[str, Any]:
    text = (
        f"TASK: {kind}\n{instructions}\n"
        f"Context: {json.dumps(context, sort_keys=True)}\n"
        f"Reply with JSON of the form {_SHAPES[kind]}."
    )
    return {"type": "text", "text": text}


def _image_block(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def _messages(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]


def task_rephrasings(context: dict[str, Any]) -> list[dict[str, Any]]:
    instructions = (
        f"Write {context['n']} different ways a person could ask a robot to do the task in Context.task. "
        "Keep the meaning, objects and goal exactly; vary wording and sentence form."
    )
    return _messages([_text_block("task_rephrasings", instructions, context)])


def subtasks(context: dict[str, Any], sheets: Sequence[ContactSheet]) -> list[dict[str, Any]]:
    instructions = (
        "CONTACT SHEETS follow: each tile is one video frame labelled with its episode time t in seconds, in "
        "reading order. Split what the robot does between Context.window_start and Context.window_end into "
        "consecutive subtasks. Give each subtask's start time (one of Context.timestamps) and a short imperative "
        "phrase such as 'grasp the red cube'. Start times must increase."
    )
    content = [_text_block("subtasks", instructions, context)]
    content += [_image_block(s.data_url()) for s in sheets]
    return _messages(content)


def memory(context: dict[str, Any]) -> list[dict[str, Any]]:
    instructions = (
        "The robot just finished Context.completed_subtask. Update its memory: one sentence, first person, past "
        "tense, that keeps what still matters from Context.prior_memory and adds what was just done."
    )
    return _messages([_text_block("memory", instructions, context)])


def initial_speech(context: dict[str, Any]) -> list[dict[str, Any]]:
    instructions = "The robot was just given the task in Context.task. Write the short sentence it says to acknowledge it."
    return _messages([_text_block("initial_speech", instructions, context)])


def interjection(context: dict[str, Any], sheets: Sequence[ContactSheet]) -> list[dict[str, Any]]:
    instructions = (
        "CONTACT SHEETS follow around time Context.t. At Context.t the user interrupts the robot and asks it to "
        "do Context.next_subtask next (which is what the robot then does). Write what the user says and the "
        "robot's short spoken reply."
    )
    content = [_text_block("interjection", instructions, context)]
    content += [_image_block(s.data_url()) for s in sheets]
    return _messages(content)


def vqa(context: dict[str, Any], image_url: str | None) -> list[dict[str, Any]]:
    kind = context["question_type"]
    instructions = (
        f"Ask one {kind} question about this camera frame that is useful for a robot doing Context.task, and "
        f"answer it. The answer object is {VQA_ANSWER_HELP[kind]}. Coordinates are on a 0-1000 scale normalised "
        "to the image width and height (not pixels)."
    )
    content = [_text_block("vqa", instructions, context)]
    if image_url:
        content.append(_image_block(image_url))
    return _messages(content)


# ---- reply checks: None when usable, else what is wrong (fed back in the corrective reprompt) ----


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def check_rephrasings(answer: dict[str, Any]) -> str | None:
    items = answer.get("rephrasings")
    if not isinstance(items, list) or not all(_is_text(x) for x in items):
        return "`rephrasings` must be a list of non-empty strings"
    return None


def check_subtasks(answer: dict[str, Any]) -> str | None:
    items = answer.get("subtasks")
    if not isinstance(items, list):
        return "`subtasks` must be a list"
    for item in items:
        if not isinstance(item, dict) or not _is_text(item.get("text")):
            return "every subtask needs a non-empty `text`"
        start = item.get("start")
        if isinstance(start, bool) or not isinstance(start, int | float):
            return "every subtask needs a numeric `start` in seconds"
    return None


def check_field(name: str):
    def check(answer: dict[str, Any]) -> str | None:
        return None if _is_text(answer.get(name)) else f"`{name}` must be a non-empty string"

    return check


def check_interjection(answer: dict[str, Any]) -> str | None:
    return check_field("interjection")(answer) or check_field("say")(answer)


def _coord(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1000


def vqa_answer_problem(kind: str | None, answer: Any) -> str | None:
    """What is wrong with a VQA answer object for question type `kind` (any type when None)."""
    if not isinstance(answer, dict):
        return "the answer must be a JSON object"
    keys = set(answer)
    shapes = {
        "bbox": {"detections"},
        "keypoint": {"label", "point_format", "point"},
        "count": {"label", "count"},
        "attribute": {"label", "attribute", "value"},
        "spatial": {"subject", "relation", "object"},
    }
    if kind is None:
        kind = next((k for k, v in shapes.items() if v == keys), None)
        if kind is None:
            return f"answer keys {sorted(keys)} match no VQA answer shape"
    if keys != shapes[kind]:
        return f"a {kind} answer has exactly the keys {sorted(shapes[kind])}"
    if kind == "bbox":
        dets = answer["detections"]
        if not isinstance(dets, list) or len(dets) > 3:
            return "`detections` must be a list of at most 3 boxes"
        for det in dets:
            if not isinstance(det, dict) or set(det) != {"label", "bbox"} or not _is_text(det["label"]):
                return "each detection is {label, bbox}"
            box = det["bbox"]
            if not (isinstance(box, list) and len(box) == 4 and all(_coord(v) for v in box)):
                return "each bbox is [x1, y1, x2, y2] on the 0-1000 scale"
            if box[0] > box[2] or box[1] > box[3]:
                return "each bbox needs x1 <= x2 and y1 <= y2"
    elif kind == "keypoint":
        point = answer["point"]
        if answer["point_format"] != "xy" or not (
            isinstance(point, list) and len(point) == 2 and all(_coord(v) for v in point)
        ):
            return "a keypoint is point_format 'xy' with point [x, y] on the 0-1000 scale"
        if not _is_text(answer["label"]):
            return "a keypoint needs a label"
    elif kind == "count":
        count = answer["count"]
        if (
            isinstance(count, bool)
            or not isinstance(count, int)
            or count < 0
            or not _is_text(answer["label"])
        ):
            return "a count is a label and a non-negative integer"
    elif not all(_is_text(answer[k]) for k in shapes[kind]):
        return f"every field of a {kind} answer is a non-empty string"
    return None


def check_vqa(kind: str):
    def check(answer: dict[str, Any]) -> str | None:
        if not _is_text(answer.get("question")):
            return "`question` must be a non-empty string"
        return vqa_answer_problem(kind, answer.get("answer"))

    return check
