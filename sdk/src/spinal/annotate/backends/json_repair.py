"""Pull one JSON object out of a model's reply: drop <think> blocks and code fences, then find the object.

Used by the OpenAI-compatible backend before it decides whether a corrective reprompt is needed.
"""

from __future__ import annotations

import json
import re
from typing import Any

_THINK_RE = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_FENCE_RE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)```", re.DOTALL)


def _first_balanced_object(text: str) -> str | None:
    start = text.find("{")
    while start != -1:
        depth = 0
        in_string = False
        escaped = False
        for i in range(start, len(text)):
            ch = text[i]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start : i + 1]
        start = text.find("{", start + 1)
    return None


def extract_json(text: str | None) -> tuple[dict[str, Any] | None, bool]:
    """(object, repaired): the JSON object in `text` and whether it needed cleaning to be found."""
    if not text:
        return None, False
    try:
        value = json.loads(text)
        return (value, False) if isinstance(value, dict) else (None, False)
    except ValueError:
        pass
    cleaned = _THINK_RE.sub("", text)
    fence = _FENCE_RE.search(cleaned)
    candidates = [fence.group(1)] if fence else []
    candidates.append(cleaned)
    for candidate in candidates:
        for attempt in (candidate.strip(), _first_balanced_object(candidate)):
            if not attempt:
                continue
            try:
                value = json.loads(attempt)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value, True
    return None, False
