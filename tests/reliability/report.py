"""Figures for docs/reliability.md: each scenario records its counts as one JSON line.

Lines go to stdout (shown with ``pytest -s``) and, when ``FLEET_RELIABILITY_REPORT`` names a file, are
appended to it, so a full run leaves the figures the document quotes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def record(scenario: str, **figures: Any) -> None:
    line = json.dumps({"scenario": scenario, **figures}, sort_keys=True)
    print(f"RELIABILITY {line}")  # noqa: T201
    target = os.environ.get("FLEET_RELIABILITY_REPORT")
    if target:
        with Path(target).open("a", encoding="utf-8") as report:
            report.write(line + "\n")
