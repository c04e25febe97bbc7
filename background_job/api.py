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

An operator may cancel a job (``fleet cancel``). One that has not started never runs. A running one
learns of it within about half a visibility timeout: ``job.cancelled`` is set, as ``job.shutdown`` is on
SIGTERM, and a long job that checks it raises :class:`JobCancelled` to stop cleanly (recorded as
``cancelled``, message deleted). A job that ignores it runs to the end, and the ledger keeps both facts.

``job.progress(value, note)`` reports how far the job is (a fraction or a count); it costs no request,
the next lease extension or the outcome carries the latest report to the ledger.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.job_log.log import JobLog
from common.ledger.progress import ProgressCell
from common.sqs.shutdown import Shutdown


class RetryLater(Exception):
    """Not now: try again after the usual backoff (for example a dependency is busy)."""


class PermanentJobError(Exception):
    """This job can never succeed as submitted; park it in the DLQ with this message as the reason."""


class JobCancelled(Exception):
    """Raised by a job that stops because it was cancelled: recorded ``cancelled``, never retried."""


class Cancellation:
    """A one-way flag set when an operator cancels the running job; poll it or wait on it like ``shutdown``."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def request(self) -> None:
        self._event.set()

    def is_requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None) -> bool:
        """Sleep up to ``timeout`` seconds, waking early (True) when the job is cancelled."""
        return self._event.wait(timeout)

    def raise_if_requested(self) -> None:
        """The one-liner for a job's loop: stop here, cleanly, once cancelled."""
        if self._event.is_set():
            raise JobCancelled("cancelled by an operator")


@dataclass(frozen=True, slots=True)
class JobContext:
    job_id: str
    job_type: str
    correlation_id: str
    #: Which run of the job this is (1 first): the ledger's ``attempts``, else SQS's receive count.
    attempt: int
    trigger: Mapping[str, Any]
    log: JobLog
    shutdown: Shutdown
    #: When the attempt's time limit runs out, on ``time.monotonic()``'s clock (None: no limit).
    deadline: float | None = None
    #: Set when an operator cancels this job (see the module's docstring).
    cancelled: Cancellation = field(default_factory=Cancellation)
    #: The latest progress report; use :meth:`progress` to report.
    progress_report: ProgressCell = field(default_factory=ProgressCell)

    def progress(self, value: float, note: str = "") -> None:
        """Report progress (a fraction 0..1 or a count); free: it rides on the next ledger write."""
        self.progress_report.report(value, note)

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
