"""Container health without HTTP: the worker loop touches a file, and ``python -m common.health`` checks it.

A worker stuck anywhere (a deadlock, a hung connection) stops touching the file, and ECS replaces the
task. The loop wakes at least once per long poll (20 s), so anything older than the threshold is a
worker that no longer turns. A loop that still turns while a job slot is stuck past its time limit
writes the problem into the file instead of leaving it empty, and the check fails on it too.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from common import side_channels
from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE
from common.settings import ENV_HEARTBEAT_FILE

DEFAULT_MAX_AGE_SECONDS = 90.0


class Liveness:
    """Touched by the worker loop on every turn."""

    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self._reported: str | None = None

    def touch(self, problem: str | None = None) -> None:
        """Mark the loop alive; with ``problem``, alive but unhealthy (the text says why)."""
        try:
            if problem is None and self._reported is None:
                self._path.touch()
            else:
                self._path.write_text(problem or "")
                self._reported = problem
        except OSError as error:
            # A missing /tmp must not stop jobs: counted and reported once; the health check reports it too.
            side_channels.HEARTBEAT_FILE.failed(error)


def check(paths: list[Path], max_age_seconds: float, now: float) -> tuple[bool, str]:
    for path in paths:
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:
            continue
        if age > max_age_seconds:
            return False, f"unhealthy: {path} last touched {age:.0f}s ago (limit {max_age_seconds:.0f}s)"
        problem = _problem(path)
        if problem:
            return False, problem
        return True, f"healthy: {path} touched {age:.0f}s ago"
    return False, f"unhealthy: no heartbeat file among {', '.join(map(str, paths))}"


def _problem(path: Path) -> str:
    """What the worker wrote into its heartbeat file: empty while it is healthy."""
    try:
        return path.read_text(errors="replace").strip()[:500]
    except OSError:
        return ""


def main() -> int:
    configured = os.environ.get(ENV_HEARTBEAT_FILE, "").strip()
    candidates = (
        [configured] if configured else [f"/tmp/{s}.heartbeat" for s in (MAIN_JOB_SERVICE, BACKGROUND_JOB_SERVICE)]  # noqa: S108
    )
    max_age = float(os.environ.get("HEARTBEAT_MAX_AGE_SECONDS", DEFAULT_MAX_AGE_SECONDS))
    healthy, detail = check([Path(p) for p in candidates], max_age, time.time())
    print(detail, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
