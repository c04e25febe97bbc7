"""A job's progress report: the latest value only, carried by the next ledger write that happens anyway.

``job.progress(value, note)`` stores here and makes no request: the lease extension (every half
visibility timeout while the job runs) or the outcome write takes the newest report, so a job may call
it in a tight loop and the ledger still sees at most one write per heartbeat (the model is BullMQ's
``updateProgress`` and Temporal's heartbeat details, without their extra round trips).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from common.ledger.schema import MAX_PROGRESS_NOTE_CHARS


class InvalidProgress(ValueError):
    """A progress value that is not a finite, non-negative number."""


@dataclass(frozen=True, slots=True)
class Progress:
    #: A fraction (0..1) or a count of items done: the job decides, ``fleet`` shows it as given.
    value: float
    note: str
    #: Epoch seconds of the report.
    at: float


class ProgressCell:
    """The newest report of one running job; written by the job's thread, read by the heartbeat's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: Progress | None = None

    def report(self, value: float, note: str = "") -> None:
        """Keep ``value`` (and ``note``) as the job's progress; raises InvalidProgress for a bad value."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise InvalidProgress(f"progress must be a finite number >= 0, got {value!r}")
        with self._lock:
            self._latest = Progress(float(value), str(note)[:MAX_PROGRESS_NOTE_CHARS], time.time())

    def latest(self) -> Progress | None:
        with self._lock:
            return self._latest
