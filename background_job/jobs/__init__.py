"""The job types this fleet runs. To add one: write a module here, then register it below."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from background_job.api import JobHandler
from background_job.jobs import diagnostic_fail, diagnostic_sleep, main_job_processing

REGISTRY: Final[Mapping[str, JobHandler]] = {
    main_job_processing.JOB_TYPE: main_job_processing.run,
    diagnostic_sleep.JOB_TYPE: diagnostic_sleep.run,
    diagnostic_fail.JOB_TYPE: diagnostic_fail.run,
}
