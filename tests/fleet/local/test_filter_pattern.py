"""CloudWatch Logs filter patterns as the local emulator applies them."""

from __future__ import annotations

import json

import pytest

from fleet.local.filter_pattern import FilterPatternError, compile_filter_pattern

EVENTS = [
    json.dumps({"event": "job.succeeded", "level": "info", "x": 7}),
    json.dumps({"event": "job.step", "level": "ERROR", "x": 3, "a": {"b": [True]}}),
    "plain failed text",
]


def _matching(pattern: str) -> list[int]:
    matches = compile_filter_pattern(pattern)
    return [index for index, message in enumerate(EVENTS) if matches(message)]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("", [0, 1, 2]),
        ("failed", [2]),
        ('"failed text"', [2]),
        ("?failed ?ERROR", [1, 2]),
        ("job -succeeded", [1]),
        ('{ $.level = "ERROR" }', [1]),
        ('{ $.event = "job.succeeded" }', [0]),
        ('{ $.event = "job.*" }', [0, 1]),
        ("{ $.x > 5 }", [0]),
        ('{ $.x < 5 && $.level = "ERROR" }', [1]),
        ('{ ($.x >= 7) || $.level != "info" }', [0, 1]),
        ("{ $.a.b[0] IS TRUE }", [1]),
        ("{ $.a NOT EXISTS }", [0]),
    ],
)
def test_patterns_select_the_events_cloudwatch_logs_would(pattern: str, expected: list[int]) -> None:
    """Terms, phrases, OR, exclusion and JSON patterns each select exactly the matching events."""
    assert expected == _matching(pattern)


@pytest.mark.parametrize("pattern", ["{ $.x > }", "{ $.x = 1", "[ip, user]", '{ $.level > "a" }'])
def test_invalid_patterns_are_refused_with_a_reason(pattern: str) -> None:
    """A pattern AWS would refuse (or the emulator cannot honour) is an error, never match-everything."""
    with pytest.raises(FilterPatternError):
        compile_filter_pattern(pattern)
