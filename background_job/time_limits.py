"""Each job type's time limit: ``TIMEOUT_SECONDS`` in the job's module, else the worker's default.

Declared beside the job, as its ``JOB_TYPE`` is, so the registry stays one line per job type. Checked
when the worker starts: a limit that is not a positive number the visibility heartbeat can cover stops
the worker with ``config.invalid`` naming the module, instead of failing jobs at 3 am.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from background_job.api import JobHandler
from common.settings import ConfigError, Settings, check_job_timeout

ATTRIBUTE = "TIMEOUT_SECONDS"


def time_limits(registry: Mapping[str, JobHandler], settings: Settings) -> dict[str, float]:
    """The limit of every registered job type, checked; raises :class:`ConfigError` naming a bad one."""
    limits = {}
    for job_type, handler in registry.items():
        module = inspect.getmodule(handler)
        declared = getattr(module, ATTRIBUTE, None)
        name = f"{getattr(module, '__name__', job_type)}.{ATTRIBUTE}"
        if declared is None:
            limits[job_type] = settings.job_timeout_seconds
            continue
        if isinstance(declared, bool) or not isinstance(declared, int | float):
            raise ConfigError(f"{name}={declared!r} is not a number of seconds")
        check_job_timeout(settings, name, float(declared))
        limits[job_type] = float(declared)
    return limits
