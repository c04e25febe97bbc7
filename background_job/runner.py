"""Runs one background job message: validate, dispatch by jobType, record the lifecycle, pick the outcome.

It is also the ledger gate's :class:`~common.ledger.gate.JobSignals`: it hands over a running job's latest
progress, tells its context of an operator's cancel, and writes ``job.cancelled`` into the stream of a
job deleted unrun.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from background_job.api import Cancellation, JobCancelled, JobContext, JobHandler, PermanentJobError, RetryLater
from common import metrics, side_channels
from common.job_log.log import JobLog, OutageBreaker
from common.ledger.client import InvalidResult, JobRef, encode_result
from common.ledger.progress import Progress, ProgressCell
from common.logging import bound_context, get_logger
from common.messages import BackgroundJob, MalformedMessage, parse_background_job
from common.metrics import MetricsEmitter
from common.settings import DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS
from common.sqs.inbound import InboundMessage
from common.sqs.outcome import Outcome, Verdict
from common.sqs.shutdown import Shutdown
from common.sqs.time_limit import Attempt, current_attempt, limit_current_attempt

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Running:
    """One running attempt, for the watchdog's report and the ledger gate's signals."""

    job: BackgroundJob
    log: JobLog
    cancellation: Cancellation = field(default_factory=Cancellation)
    progress: ProgressCell = field(default_factory=ProgressCell)


class JobRunner:
    """The MessageHandler for the background queue."""

    def __init__(
        self,
        *,
        registry: Mapping[str, JobHandler],
        logs: CloudWatchLogsClient,
        log_group: str,
        metrics_emitter: MetricsEmitter,
        max_attempts: int,
        max_receive_count: int,
        shutdown: Shutdown,
        logs_outage_cooldown_seconds: float = DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS,
        time_limits: Mapping[str, float] | None = None,
    ) -> None:
        """``time_limits`` by job type: each attempt's limit, which the dispatcher's watchdog enforces."""
        self._registry = registry
        self._logs = logs
        self._log_group = log_group
        self._metrics = metrics_emitter
        self._max_attempts = max_attempts
        self._max_receive_count = max_receive_count
        self._shutdown = shutdown
        self._logs_breaker = OutageBreaker(logs_outage_cooldown_seconds)
        self._time_limits = time_limits or {}
        #: Each running attempt by message ID, for the watchdog's report and the ledger's signals.
        self._running: dict[str, _Running] = {}

    def validate(self, message: InboundMessage) -> BackgroundJob:
        """The message's job, if it meets the contract and names a known job type; else MalformedMessage.

        The ledger gate calls this before its duplicate check, so a bad message is quarantined with its
        reason even when it carries the ID of a job that already succeeded.
        """
        job = parse_background_job(message.body, message.attributes)
        if job.job_type not in self._registry:
            raise MalformedMessage(f"unknown jobType '{job.job_type}'; known: {', '.join(sorted(self._registry))}")
        return job

    def __call__(self, message: InboundMessage) -> Outcome:
        job = self.validate(message)
        handler = self._registry[job.job_type]
        limit = self._time_limits.get(job.job_type)
        deadline = limit_current_attempt(limit) if limit is not None else None
        with bound_context(job_id=job.job_id, correlation_id=job.correlation_id, job_type=job.job_type):
            job_log = self._open_log(job, message)
            with side_channels.JOB_LOG.guard():
                job_log.open()
            running = self._running[message.message_id] = _Running(job, job_log)
            try:
                outcome = self._execute(handler, running, message, deadline)
            finally:
                self._running.pop(message.message_id, None)
                # Ending ships the stream: a side channel, it can neither fail nor change the outcome.
                with side_channels.JOB_LOG.guard():
                    job_log.end()
            # The slot is free now; the message settles once the stream has the job's last events.
            return outcome.settled_after(job_log.when_shipped).with_progress(running.progress.latest())

    # -- the ledger gate's JobSignals --------------------------------------------------------------

    def progress(self, message_id: str) -> Progress | None:
        running = self._running.get(message_id)
        return running.progress.latest() if running is not None else None

    def cancel_requested(self, message_id: str) -> None:
        running = self._running.get(message_id)
        if running is None:
            return  # it ended meanwhile: its outcome write keeps both facts
        running.cancellation.request()
        with side_channels.JOB_LOG.guard():
            running.log.warning("job.cancel_requested", stops_if_the_job_checks=True)

    def cancelled_unrun(self, job: JobRef, message: InboundMessage) -> None:
        """``job.cancelled`` in the job's own stream, so ``fleet job`` shows why it never ran."""
        job_log = JobLog(
            logs=self._logs,
            log_group=self._log_group,
            job_id=job.job_id,
            context={"correlationId": job.correlation_id, "jobType": job.job_type, "attempt": message.attempt},
            on_delivery_failure=lambda count: self._metrics.emit({metrics.JOB_LOG_DELIVERY_FAILURES: count}),
            breaker=self._logs_breaker,
        )
        job_log.open()
        job_log.warning("job.cancelled", ran=False, message_id=message.message_id)
        job_log.end()

    def _open_log(self, job: BackgroundJob, message: InboundMessage) -> JobLog:
        return JobLog(
            logs=self._logs,
            log_group=self._log_group,
            job_id=job.job_id,
            context={
                "correlationId": job.correlation_id,
                "jobType": job.job_type,
                "attempt": message.attempt,
            },
            on_delivery_failure=lambda count: self._metrics.emit({metrics.JOB_LOG_DELIVERY_FAILURES: count}),
            breaker=self._logs_breaker,
        )

    def timed_out(self, message: InboundMessage, attempt: Attempt) -> Outcome:
        """The watchdog's report of an attempt past its limit: ``job.timed_out`` in both logs, a retry verdict.

        Called on the watchdog's thread while the job's own thread may still run; what that thread
        returns later is discarded by the dispatcher.
        """
        running = self._running.get(message.message_id)
        job, job_log = (running.job, running.log) if running is not None else (None, None)
        will_retry = self._retries_left(message)
        fields = {
            "limit_seconds": attempt.limit_seconds,
            "attempt": message.attempt,
            "max_attempts": self._max_attempts,
            "will_retry": will_retry,
        }
        job_fields = {"job_id": job.job_id, "job_type": job.job_type} if job is not None else {}
        log.error("job.timed_out", message_id=message.message_id, **job_fields, **fields)
        if job_log is not None:
            with side_channels.JOB_LOG.guard():
                job_log.error("job.timed_out", **fields)
        with side_channels.METRICS.guard():
            self._metrics.emit(
                {metrics.JOBS_TIMED_OUT: 1, metrics.JOBS_FAILED: 1},
                **({"jobType": job.job_type} if job is not None else {}),
            )
        return Outcome.retry(f"timed out after {attempt.limit_seconds:g} s")

    def _execute(
        self, handler: JobHandler, running: _Running, message: InboundMessage, deadline: float | None
    ) -> Outcome:
        job, job_log = running.job, running.log
        waited_ms = max(0, int(time.time() * 1000) - message.sent_timestamp_ms)
        with side_channels.JOB_LOG.guard():
            job_log.info("job.started", queued_for_ms=waited_ms, redelivered=message.receive_count > 1)
        started = time.monotonic()
        context = JobContext(
            job_id=job.job_id,
            job_type=job.job_type,
            correlation_id=job.correlation_id,
            attempt=message.attempt,
            trigger=job.trigger,
            log=job_log,
            shutdown=self._shutdown,
            deadline=deadline,
            cancelled=running.cancellation,
            progress_report=running.progress,
        )
        try:
            result_json = encode_result(handler(context))
            if _attempt_timed_out():
                return self._returned_late(job_log, started)
        except JobCancelled as stop:
            if _attempt_timed_out():
                return self._returned_late(job_log, started)
            outcome = self._stopped_on_cancel(job_log, started, stop)
        except RetryLater as request:
            outcome = self._failed(job_log, message, request, level="info", retry=True)
        except (PermanentJobError, InvalidResult) as error:
            # An unstorable result is as permanent as the job's own verdict: it would be refused again.
            outcome = self._failed(job_log, message, error, level="error", retry=False)
        except Exception as error:  # noqa: BLE001 - any handler failure is a retry, never a dead worker
            outcome = self._failed(job_log, message, error, level="error", retry=True)
        else:
            duration_ms = round((time.monotonic() - started) * 1000)
            outcome = Outcome.done(duration_ms=duration_ms, result_json=result_json)
            with side_channels.JOB_LOG.guard():
                job_log.info("job.succeeded", duration_ms=duration_ms, has_result=result_json is not None)
            # Its duration too: the per-job EMF line that carried it with the jobId is aggregated now.
            log.info("job.succeeded", attempt=message.attempt, duration_ms=duration_ms)
        # The outcome is decided above; everything below only reports it.
        with side_channels.METRICS.guard():
            self._record_metrics(job, outcome, started, waited_ms)
        return outcome

    @staticmethod
    def _stopped_on_cancel(job_log: JobLog, started: float, stop: JobCancelled) -> Outcome:
        duration_ms = round((time.monotonic() - started) * 1000)
        with side_channels.JOB_LOG.guard():
            job_log.warning("job.cancelled", ran=True, duration_ms=duration_ms, detail=str(stop)[:1000])
        log.info("job.cancelled", ran=True, duration_ms=duration_ms)
        return Outcome.stopped_on_cancel(duration_ms=duration_ms)

    def _returned_late(self, job_log: JobLog, started: float) -> Outcome:
        """The job returned after its attempt was settled as timed out: reported, never counted as a success."""
        duration_ms = round((time.monotonic() - started) * 1000)
        with side_channels.JOB_LOG.guard():
            job_log.warning("job.returned_after_timeout", duration_ms=duration_ms, outcome_discarded=True)
        return Outcome.retry("returned after its time limit")  # discarded: the attempt is settled already

    def _failed(
        self, job_log: JobLog, message: InboundMessage, error: Exception, *, level: str, retry: bool
    ) -> Outcome:
        will_retry = retry and self._retries_left(message)
        fields = {
            "error_type": type(error).__name__,
            "error": str(error)[:1000],
            "attempt": message.attempt,
            "max_attempts": self._max_attempts,
            "will_retry": will_retry,
        }
        with side_channels.JOB_LOG.guard():
            job_log.event("job.failed", level, **fields)
        (log.info if level == "info" else log.error)("job.failed", **fields)
        reason = f"{type(error).__name__}: {error}"
        return Outcome.retry(reason) if retry else Outcome.quarantine(reason[:1000])

    def _retries_left(self, message: InboundMessage) -> bool:
        """What the settler decides (common/sqs/settlement.py): runs left under MAX_ATTEMPTS, as the ledger
        counts them, and receives left under the queue's redrive backstop."""
        return message.attempt < self._max_attempts and message.receive_count < self._max_receive_count

    def _record_metrics(self, job: BackgroundJob, outcome: Outcome, started: float, waited_ms: int) -> None:
        succeeded = outcome.verdict is Verdict.DONE and not outcome.cancelled
        self._metrics.emit(
            {
                metrics.JOBS_SUCCEEDED: 1 if succeeded else 0,
                metrics.JOBS_FAILED: 0 if succeeded or outcome.cancelled else 1,
                metrics.JOBS_CANCELLED: 1 if outcome.cancelled else 0,
                metrics.JOB_DURATION: round((time.monotonic() - started) * 1000),
                metrics.JOB_QUEUE_LATENCY: waited_ms,
            },
            jobType=job.job_type,  # a group of the aggregated line: the job ID is in job.succeeded/failed
        )


def _attempt_timed_out() -> bool:
    attempt = current_attempt()
    return attempt is not None and attempt.timed_out
