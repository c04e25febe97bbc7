"""Operator tool, not business logic: a job that always fails, to exercise retries, backoff and the DLQ."""

from __future__ import annotations

from typing import Final

from background_job.api import JobContext

JOB_TYPE: Final = "diagnostic-fail"


class DiagnosticFailure(RuntimeError):
    """Raised on purpose by the diagnostic-fail job."""


def run(job: JobContext) -> None:
    job.log.info("job.step", step="fail_on_purpose", attempt=job.attempt)
    raise DiagnosticFailure(f"diagnostic-fail job failed on purpose (attempt {job.attempt})")
