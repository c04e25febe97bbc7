"""The emulator's cheaper UpdateItem answers exactly as moto does, and parses each expression once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


def _answers(mode: str) -> dict[str, Any]:
    """One run of tests/fleet/local/dynamodb_answers.py in a fresh interpreter (the patches are process-wide)."""
    completed = subprocess.run(
        [sys.executable, "-m", "tests.fleet.local.dynamodb_answers", mode],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
    return result


def test_the_patched_update_item_gives_moto_s_answers_and_errors() -> None:
    """Items, ALL_NEW and ALL_OLD images, and every validation error are the same with and without the patches."""
    plain, patched = _answers("plain"), _answers("patched")

    assert plain["answers"] == patched["answers"]
    assert 4 <= sum("error" in answer for answer in plain["answers"][:-1])  # the refusals and rejections ran


def test_each_update_expression_text_is_parsed_once() -> None:
    """Six distinct expressions over twelve updates: moto's parser runs six times, not once per update and step."""
    assert 6 == _answers("patched")["parses"]
