"""Operator tool, not business logic: a job that waits ``data.seconds`` (default 1, at most 3600).

Use it to watch a long job end to end: the visibility heartbeat, the shutdown grace period and
autoscaling. Like a real job, it keeps going when the worker is asked to stop.
"""

from __future__ import annotations

import time
from typing import Final

from background_job.api import JobContext, PermanentJobError

JOB_TYPE: Final = "diagnostic-sleep"
MAX_SECONDS: Final = 3600.0


def run(job: JobContext) -> None:
    seconds = job.data.get("seconds", 1)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_SECONDS:
        raise PermanentJobError(f"data.seconds must be a number from 0 to {MAX_SECONDS:g}")
    job.log.info("job.step", step="sleep", seconds=seconds)
    time.sleep(seconds)
