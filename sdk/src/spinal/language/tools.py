"""The tool catalog: the `say` function schema, the default catalog, and speech atoms that invoke it.

Used by the column writer (info.json `tools`), the annotation pipeline (speech atoms) and recipes.
"""

from __future__ import annotations

import copy
import json
from typing import Any

SAY_TOOL_NAME = "say"

SAY_TOOL_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": SAY_TOOL_NAME,
        "description": "Speak a short utterance to the user via the TTS executor.",
        "parameters": {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "The verbatim text to speak."}},
            "required": ["text"],
        },
    },
}

DEFAULT_TOOLS: list[dict[str, Any]] = [SAY_TOOL_SCHEMA]


def say_call(text: str) -> dict[str, Any]:
    """One `say` invocation; `arguments` is an object, not a JSON string."""
    return {"type": "function", "function": {"name": SAY_TOOL_NAME, "arguments": {"text": text}}}


def speech_atom(text: str) -> dict[str, Any]:
    """The style-less event row that makes the robot say `text` (no content, no camera)."""
    return {
        "role": "assistant",
        "content": None,
        "style": None,
        "camera": None,
        "tool_calls": [say_call(text)],
    }


def tools_from_info(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The dataset's tool catalog from `meta/info.json`; the default catalog when none is declared."""
    tools = info.get("tools")
    if isinstance(tools, list) and tools:
        return copy.deepcopy(tools)
    return copy.deepcopy(DEFAULT_TOOLS)


def tool_name(tool: Any) -> str | None:
    """The function name of a tool schema or a tool call, parsing JSON strings; None when it has none."""
    if isinstance(tool, str):
        try:
            tool = json.loads(tool)
        except ValueError:
            return None
    if not isinstance(tool, dict):
        return None
    function = tool.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return function["name"]
    return None


def merge_default_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The declared catalog with `say` appended when missing; tools the user declared are kept as they are."""
    merged = copy.deepcopy(tools) if isinstance(tools, list) else []
    names = {tool_name(t) for t in merged}
    for default in DEFAULT_TOOLS:
        if tool_name(default) not in names:
            merged.append(copy.deepcopy(default))
    return merged
