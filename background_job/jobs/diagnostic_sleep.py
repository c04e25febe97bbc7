"""Operator tool, not business logic: a job that waits ``data.seconds`` (default 1, at most 3600).

Use it to watch a long job end to end: the visibility heartbeat, the shutdown grace period, autoscaling
and the time limit. Like a real job, it keeps going when the worker is asked to stop. Two switches
exercise the time limit (``JOB_TIMEOUT_SECONDS``):

- ``data.stopEarly``: stop cleanly, and succeed, once less than a second of the time limit is left, as a
  well-behaved long job does with ``job.time_left()``;
- ``data.forever``: block forever in a call that never returns (``Event().wait()``), as a hung network
  call does: the worker fails the attempt at its limit and counts the slot as lost.

It also behaves as a long job should towards an operator: it reports its progress (seconds slept of
``data.seconds``) with ``job.progress()``, and stops on ``fleet cancel`` (it waits on ``job.cancelled``
and raises JobCancelled). ``data.ignoreCancel`` makes it run to the end regardless, to show that case.

Counting runs, not log lines: when the worker's environment sets ``DIAGNOSTIC_EFFECTS_FILE`` (operator
configuration, never the payload), each run that reaches its end appends one line, the job ID, to that
file, as a job's external side effect would happen. The reliability scenarios count effects from it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Final

from background_job.api import JobCancelled, JobContext, PermanentJobError

JOB_TYPE: Final = "diagnostic-sleep"
MAX_SECONDS: Final = 3600.0
#: With ``stopEarly``, how much of the time limit the job leaves unused.
STOP_MARGIN_SECONDS: Final = 1.0
_STEP_SECONDS: Final = 0.1
#: Where each finished run appends its job ID (unset: no effect is written).
ENV_EFFECTS_FILE: Final = "DIAGNOSTIC_EFFECTS_FILE"


def run(job: JobContext) -> None:
    if job.data.get("forever") is True:
        job.log.info("job.step", step="block_forever")
        threading.Event().wait()
    seconds = job.data.get("seconds", 1)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_SECONDS:
        raise PermanentJobError(f"data.seconds must be a number from 0 to {MAX_SECONDS:g}")
    job.log.info("job.step", step="sleep", seconds=seconds)
    stop_early, obey_cancel = job.data.get("stopEarly") is True, job.data.get("ignoreCancel") is not True
    end = time.monotonic() + seconds
    while (remaining := end - time.monotonic()) > 0:
        if stop_early and job.time_left() <= STOP_MARGIN_SECONDS:
            job.log.info("job.step", step="stopped_early", seconds_left=round(remaining, 1))
            return
        job.progress(round(1 - remaining / seconds, 3), f"{seconds - remaining:.0f} of {seconds:g} s")
        if obey_cancel:
            if job.cancelled.wait(min(_STEP_SECONDS, remaining)):
                job.log.info("job.step", step="stopped_on_cancel", seconds_left=round(remaining, 1))
                raise JobCancelled(f"cancelled with {remaining:.1f} s left")
        else:
            time.sleep(min(_STEP_SECONDS, remaining))
    _record_effect(job)


def _record_effect(job: JobContext) -> None:
    """One O_APPEND write per run, so concurrent runs in several processes never interleave a line."""
    path = os.environ.get(ENV_EFFECTS_FILE, "").strip()
    if not path:
        return
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, f"{job.job_id}\n".encode())
    finally:
        os.close(descriptor)
