"""The local supervisor's answer to ECS DescribeServices: running and desired workers per service.

The local fleet has no ECS cluster; its supervisor plays ECS (fleet/local/fleet.py). It writes how many
worker processes each service should have and how many are alive to a small JSON file whenever that
changes, and ``fleet top`` reads it where ECS has no cluster, at no request. The file names the
supervisor's pid: a report whose supervisor is gone is ignored, never shown as live.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from common.names import FleetNames

#: service -> (running, desired)
Counts = Mapping[str, tuple[int, int]]


def report_path(names: FleetNames, endpoint: str) -> Path:
    """One file per deployment and emulator endpoint (two local fleets may run side by side), in the
    temporary directory both processes share."""
    where = re.sub(r"[^A-Za-z0-9.-]+", "_", endpoint.split("://", 1)[-1]).strip("_")
    return Path(tempfile.gettempdir()) / f"fleet-local-{names.prefix}-{where}-tasks.json"


def write(path: Path, counts: Counts) -> None:
    """Replace the report atomically, so a reader never sees half a file."""
    document = {"pid": os.getpid(), "services": {name: list(pair) for name, pair in counts.items()}}
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(document), encoding="utf-8")
    partial.replace(path)


def read(path: Path) -> dict[str, tuple[int, int]] | None:
    """The counts, or None when there is no report or its supervisor is no longer running."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        os.kill(int(document["pid"]), 0)
        return {str(name): (int(pair[0]), int(pair[1])) for name, pair in document["services"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
