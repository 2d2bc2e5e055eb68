"""Pulling the JSON object out of a model's reply."""

from __future__ import annotations

import pytest
from spinal.annotate.backends.json_repair import extract_json


@pytest.mark.parametrize(
    ("text", "expected", "repaired"),
    [
        ('{"a": 1}', {"a": 1}, False),
        ('<think>hmm {"x": 0}</think>{"a": 1}', {"a": 1}, True),
        ('```json\n{"a": {"b": "}"}}\n```', {"a": {"b": "}"}}, True),
        (
            'Sure! Here it is: {"say": "a \\"quoted\\" {brace"} hope that helps',
            {"say": 'a "quoted" {brace'},
            True,
        ),
        ("<think>never closed", None, False),
        ("[1, 2]", None, False),
        ("", None, False),
        ("no json at all", None, False),
    ],
)
def test_extract_json(text, expected, repaired):
    value, was_repaired = extract_json(text)
    assert value == expected
    if expected is not None:
        assert was_repaired is repaired
