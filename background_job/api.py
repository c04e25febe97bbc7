"""What a job handler sees: its context, and the two exceptions that change what happens next.

A handler that returns has succeeded; what it returns, if not None, is its result: JSON-serialisable,
at most 32 KiB, stored in the job ledger and shown by ``fleet job`` (a result that cannot be stored
fails the job permanently, with the reason). One that raises :class:`RetryLater` is retried through the
queue (logged at info: it is expected). One that raises :class:`PermanentJobError` is quarantined at
once, because retrying cannot help. Any other exception is a failure that is retried with backoff
until the queue's maxReceiveCount moves the message to the DLQ.

A job runs under a time limit: its module's ``TIMEOUT_SECONDS`` if it declares one, else the worker's
``JOB_TIMEOUT_SECONDS``. At the limit the attempt fails as ``timed out`` and is retried, whether or not
the job's thread returns; a job that watches :meth:`JobContext.time_left` can stop cleanly before it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.job_log.log import JobLog
from common.sqs.shutdown import Shutdown


class RetryLater(Exception):
    """Not now: try again after the usual backoff (for example a dependency is busy)."""


class PermanentJobError(Exception):
    """This job can never succeed as submitted; park it in the DLQ with this message as the reason."""


@dataclass(frozen=True, slots=True)
class JobContext:
    job_id: str
    job_type: str
    correlation_id: str
    attempt: int
    trigger: Mapping[str, Any]
    log: JobLog
    shutdown: Shutdown
    #: When the attempt's time limit runs out, on ``time.monotonic()``'s clock (None: no limit).
    deadline: float | None = None

    def time_left(self) -> float:
        """Seconds until the time limit (infinite without one); at 0 the attempt has timed out."""
        if self.deadline is None:
            return math.inf
        return max(0.0, self.deadline - time.monotonic())

    @property
    def data(self) -> Mapping[str, Any]:
        data = self.trigger.get("data")
        return data if isinstance(data, Mapping) else {}


JobHandler = Callable[[JobContext], object]
