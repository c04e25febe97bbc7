"""The job ledger in background_job's delivery life: claim before running, record before deleting.

- **admit** (after a receive, before dispatch): one claim transaction for the batch. A job that already
  succeeded is finished as done, so the settler deletes it without running (``job.duplicate_skipped``);
  a job leased by another delivery is retried later through visibility, never run alongside it.
  A job an operator cancelled (``fleet cancel``) is finished the same way: deleted unrun, ``job.cancelled``
  on stdout and in its own stream, ``JobsCancelled``; every later delivery meets the same refusal.
- **returned** (on the job's thread, the moment the job returns): its outcome is written at once, in a
  write of its own (one request, the same write units as in a batch), before its log ships and before
  the delete is batched, so a crash or freeze in that gap leaves ``succeeded`` behind and the redelivery
  is skipped. A failed write is left to ``settling``.
- **extended** (after the visibility heartbeat, on its relay thread): the leases of claimed jobs still
  running are extended in one write, to the new visibility end, carrying each job's latest
  ``job.progress()``; a job whose outcome is recorded is never extended. A refusal whose old image is
  cancelled tells the running job (``job.cancelled``) within about half a visibility timeout, at no
  extra request.
- **settling** (before the DeleteMessageBatch): what was not recorded yet (a timed-out attempt, an early
  write that failed) is written in one batch, so a crash between the two leaves ``succeeded`` behind
  and the redelivery is skipped.

The ledger never decides a message's fate on its own: when DynamoDB is unavailable a claim follows
JOB_LEDGER_UNAVAILABLE (``retry``: hand the batch back; ``run``: run it unclaimed), and a failed
outcome write is logged while settlement goes on. See docs/ledger.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from common import metrics, side_channels
from common.ledger.client import Claim, ClaimResult, JobLedger, JobRef, LedgerOutcome, LedgerUnavailable
from common.ledger.progress import Progress
from common.ledger.schema import JobStatus
from common.logging import get_logger
from common.messages import MalformedMessage, parse_background_job
from common.metrics import MetricsEmitter
from common.sqs.hooks import LastAttempt
from common.sqs.in_flight import Lease
from common.sqs.inbound import InboundMessage
from common.sqs.outcome import Outcome, Verdict

log = get_logger(__name__)
POLICY_RETRY = "retry"
POLICY_RUN = "run"


class JobSignals(Protocol):
    """What the service running the jobs (background_job's runner) gives the gate: progress in, cancels out."""

    def progress(self, message_id: str) -> Progress | None:
        """The running job's latest progress report, if it made one."""
        ...

    def cancel_requested(self, message_id: str) -> None:
        """Tell the running job an operator cancelled it (sets ``job.cancelled``)."""
        ...

    def cancelled_unrun(self, job: JobRef, message: InboundMessage) -> None:
        """Write ``job.cancelled`` into the job's own stream: it was deleted without running."""
        ...


class NoSignals:
    """For a gate without a runner (tests, tools): no progress, nobody to tell."""

    def progress(self, message_id: str) -> Progress | None:
        return None

    def cancel_requested(self, message_id: str) -> None:
        return

    def cancelled_unrun(self, job: JobRef, message: InboundMessage) -> None:
        return


class LedgerGate:
    """DeliveryHooks for background_job with the job ledger on."""

    def __init__(
        self,
        *,
        ledger: JobLedger,
        unavailable_policy: str,
        metrics_emitter: MetricsEmitter,
        signals: JobSignals | None = None,
    ) -> None:
        self._ledger = ledger
        self._run_when_unavailable = unavailable_policy == POLICY_RUN
        self._metrics = metrics_emitter
        self._signals = signals or NoSignals()

    def admit(self, leases: Sequence[Lease]) -> list[Lease]:
        claimable = [(lease, claim) for lease in leases if (claim := _claim_for(lease)) is not None]
        if not claimable:
            return list(leases)  # nothing parses: the runner quarantines each with its reason
        try:
            results = self._ledger.claim([claim for _, claim in claimable])
        except LedgerUnavailable as error:
            return self._admit_unclaimed(leases, claimable, error)
        refused: set[int] = set()
        for (lease, claim), result in zip(claimable, results, strict=True):
            lease.ledger_job = claim.job.job_id
            if result is ClaimResult.CLAIMED:
                lease.ledger_claimed = True
                continue
            refused.add(id(lease))
            lease.ledger_recorded = True  # it never ran here: its outcome is not this job's to record
            self._refuse(lease, claim.job, result)
        return [lease for lease in leases if id(lease) not in refused]

    def returned(self, lease: Lease, outcome: Outcome, is_last_attempt: LastAttempt) -> None:
        """Record the job's outcome now, in its own write; ``settling`` retries it if this write fails."""
        if not lease.ledger_job or lease.ledger_recorded:
            return
        # The lease is finished only after the job's log ships: its outcome is the one just returned.
        returned = replace(lease, outcome=outcome)
        try:
            cancelled = self._ledger.record([_ledger_outcome(returned, is_last_attempt(returned))])
        except LedgerUnavailable as error:
            log.warning("ledger.write_failed", jobs=[lease.ledger_job], error=str(error), retry="before_delete")
            return
        # A retry refused because the job is cancelled is left to settling, which turns it into a delete.
        lease.ledger_recorded = not cancelled

    def extended(self, leases: Sequence[Lease]) -> None:
        running = {
            lease.ledger_job: lease
            for lease in leases
            if lease.ledger_claimed and lease.ledger_job and not lease.ledger_recorded
        }
        if not running:
            return
        progress = {
            job_id: report
            for job_id, lease in running.items()
            if (report := self._signals.progress(lease.message.message_id)) is not None
        }
        # One write for the batch: the lease ends with the earliest of the deliveries' visibility.
        lease_until_ms = min(lease.visible_until_ms() for lease in running.values())
        try:
            check = self._ledger.extend_leases(list(running), progress, lease_until_ms=lease_until_ms)
        except LedgerUnavailable as error:
            log.warning("ledger.lease_extend_failed", jobs=len(running), error=str(error))
            return
        # A job whose outcome was recorded while this write was in flight is refused as no longer running.
        for job_id in sorted(job_id for job_id in check.lost if not running[job_id].ledger_recorded):
            # Another delivery took the job over (this worker froze past its lease): it runs there too.
            log.warning("ledger.lease_lost", job_id=job_id, possible_duplicate=True)
        for job_id in sorted(check.cancelled):
            self._tell_cancelled(running[job_id])

    def _tell_cancelled(self, lease: Lease) -> None:
        """Once per delivery: the job's context learns of the cancel; whether it stops is the job's choice."""
        if lease.cancel_requested:
            return
        lease.cancel_requested = True
        log.info("job.cancel_requested", job_id=lease.ledger_job, message_id=lease.message.message_id)
        try:
            self._signals.cancel_requested(lease.message.message_id)
        except Exception:  # a hook must not raise: the heartbeat goes on
            log.exception("ledger.cancel_signal_failed", job_id=lease.ledger_job)

    def settling(self, leases: Sequence[Lease], is_last_attempt: LastAttempt) -> None:
        pending = [lease for lease in leases if lease.ledger_job and not lease.ledger_recorded]
        outcomes = [_ledger_outcome(lease, is_last_attempt(lease)) for lease in pending]
        # If this fails, the job's effect happened (or did not) whatever the ledger says: SQS settles anyway.
        cancelled = self._record(pending, outcomes, "ledger.write_failed")
        for lease in pending:
            if lease.ledger_job in cancelled:
                # Its retry was refused: the job is cancelled and would only be refused at its next claim.
                log.info("job.cancelled", job_id=lease.ledger_job, message_id=lease.message.message_id, ran=True)
                lease.outcome = Outcome.stopped_on_cancel()

    def releasing(self, leases: Sequence[Lease]) -> None:
        """Give back the claims of jobs that never started, so the next delivery runs them at once."""
        pending = [lease for lease in leases if lease.ledger_claimed and not lease.ledger_recorded]
        outcomes = [
            LedgerOutcome(str(lease.ledger_job), JobStatus.QUEUED, lease.message.receive_count) for lease in pending
        ]
        # If this fails nothing is lost: the claim's lease expires with the visibility timeout, the job runs then.
        self._record(pending, outcomes, "ledger.release_failed")

    def _record(self, pending: list[Lease], outcomes: list[LedgerOutcome], failure_event: str) -> set[str]:
        """One ledger write for the batch; each lease is recorded once, whether or not the write succeeded.

        Returns the jobs whose retry or release was refused because they are cancelled.
        """
        if not outcomes:
            return set()
        failure, cancelled = "", set()
        try:
            cancelled = self._ledger.record(outcomes)
        except LedgerUnavailable as error:
            failure = str(error)
        if failure:
            log.error(failure_event, jobs=[outcome.job_id for outcome in outcomes], error=failure)
        for lease in pending:
            lease.ledger_recorded = True
        return cancelled

    def _refuse(self, lease: Lease, job: JobRef, result: ClaimResult) -> None:
        fields = {"message_id": lease.message.message_id, "job_id": lease.ledger_job}
        if result is ClaimResult.ALREADY_SUCCEEDED:
            log.info("job.duplicate_skipped", **fields, receive_count=lease.message.receive_count)
            with side_channels.METRICS.guard():
                self._metrics.emit({metrics.JOBS_DUPLICATE_SKIPPED: 1})
            lease.finish(Outcome.done())
        elif result is ClaimResult.CANCELLED:
            log.info("job.cancelled", **fields, receive_count=lease.message.receive_count, ran=False)
            with side_channels.METRICS.guard():
                self._metrics.emit({metrics.JOBS_CANCELLED: 1}, jobType=job.job_type)
            with side_channels.JOB_LOG.guard():
                self._signals.cancelled_unrun(job, lease.message)
            lease.finish(Outcome.stopped_on_cancel())
        else:
            log.info("job.claim_busy", **fields, receive_count=lease.message.receive_count)
            lease.finish(Outcome.retry("job is running under another delivery's live lease"))

    def _admit_unclaimed(
        self, leases: Sequence[Lease], claimable: list[tuple[Lease, Claim]], error: LedgerUnavailable
    ) -> list[Lease]:
        action = "run_unclaimed" if self._run_when_unavailable else "retry_later"
        log.error("ledger.unavailable", messages=len(claimable), action=action, error=str(error))
        if self._run_when_unavailable:
            for lease, claim in claimable:
                lease.ledger_job = claim.job.job_id
            return list(leases)
        claimed_ids = {id(lease) for lease, _ in claimable}
        for lease, _ in claimable:
            lease.finish(Outcome.retry(f"job ledger unavailable: {error}"))
        return [lease for lease in leases if id(lease) not in claimed_ids]


def _claim_for(lease: Lease) -> Claim | None:
    try:
        job = parse_background_job(lease.message.body, lease.message.attributes)
    except MalformedMessage:
        return None
    return Claim(
        job=JobRef(job_id=job.job_id, job_type=job.job_type, correlation_id=job.correlation_id),
        message_id=lease.message.message_id,
        attempt=lease.message.receive_count,
    )


def _ledger_outcome(lease: Lease, last_attempt: bool) -> LedgerOutcome:
    outcome = lease.outcome or Outcome.retry("no outcome recorded")
    progress = outcome.progress
    job_id, attempt = str(lease.ledger_job), lease.message.receive_count
    if outcome.verdict is Verdict.DONE:
        status = JobStatus.CANCELLED if outcome.cancelled else JobStatus.SUCCEEDED
        return LedgerOutcome(
            job_id,
            status,
            attempt,
            duration_ms=outcome.duration_ms,
            result_json=outcome.result_json,
            progress=progress,
        )
    if outcome.verdict is Verdict.QUARANTINE:
        return LedgerOutcome(job_id, JobStatus.DEAD, attempt, error=f"quarantined: {outcome.reason}", progress=progress)
    if last_attempt:
        return LedgerOutcome(
            job_id, JobStatus.DEAD, attempt, error=f"attempts exhausted: {outcome.reason}", progress=progress
        )
    return LedgerOutcome(job_id, JobStatus.RETRYING, attempt, error=outcome.reason, progress=progress)
