"""The process's ways out that are not SQS: stdout logs, EMF metrics, the heartbeat file, the job log.

None of them may ever decide a message's fate (issue 16). Each call into one is caught at its own
boundary and counted here; the first failure of a channel is reported once on stderr, the one channel
left when stdout is gone. A worker whose stdout has failed without a single success for
:data:`LOG_OUTAGE_EXIT_SECONDS` stops receiving, settles what it owns and exits with
:data:`EXIT_LOGS_UNWRITABLE`, so that the orchestrator replaces it instead of it running blind.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

#: How long stdout may fail without one successful write before the worker exits (see module docstring).
LOG_OUTAGE_EXIT_SECONDS: Final = 60.0
#: EX_TEMPFAIL from sysexits.h: the worker is fine, its log output is not; a restart may help.
EXIT_LOGS_UNWRITABLE: Final = 75


class SideChannel:
    """Failure accounting for one side channel; thread-safe, and never raises."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failures = 0
        self._reported = False
        self._failing_since: float | None = None
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget past failures: for a process that hosts one worker after another (the tests)."""
        with self._lock:
            self.failures, self._reported, self._failing_since = 0, False, None

    def succeeded(self) -> None:
        self._failing_since = None  # a plain store: this runs on every log line

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            first = not self._reported
            self._reported = True
        if first:
            report_on_stderr(
                {"event": "side_channel.failed", "channel": self.name, "error": f"{type(error).__name__}: {error}"}
            )

    def failing_for(self, now: float) -> float:
        """Seconds since the first failure with no success after it (0 while the channel works)."""
        since = self._failing_since
        return 0.0 if since is None else now - since

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run a side-channel call: any failure is counted and swallowed, never passed to the caller."""
        try:
            yield
        except Exception as error:  # noqa: BLE001 - the point: a side channel must not fail its caller
            self.failed(error)


def report_on_stderr(document: dict[str, object]) -> None:
    """One JSON line on fd 2, written without Python's buffered streams or locks; failures are dropped."""
    try:
        os.write(2, (json.dumps(document, default=str) + "\n").encode("utf-8", "replace"))
    except OSError:
        return


STDOUT: Final = SideChannel("stdout")
METRICS: Final = SideChannel("metrics")
HEARTBEAT_FILE: Final = SideChannel("heartbeat_file")
JOB_LOG: Final = SideChannel("job_log")
ALL: Final = (STDOUT, METRICS, HEARTBEAT_FILE, JOB_LOG)
