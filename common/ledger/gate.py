"""The job ledger in background_job's delivery life: claim before running, record before deleting.

- **admit** (after a receive, before dispatch): each message is validated first (contract and a job type
  the registry knows: a malformed one is never claimed, the runner quarantines it with its reason, even
  when it carries a succeeded job's ID), then the batch is claimed (one conditional UpdateItem per job,
  concurrently). The claim's lease ends when the delivery's visibility ends, and the claim answers the
  job's ``attempts``, which decide the last attempt (a refused delivery is no attempt). A job that already
  succeeded is finished as done, so the settler deletes it without running (``job.duplicate_skipped``);
  a job leased by another delivery (busy) is retried when the holder's lease ends, never run alongside
  it, and on its last allowed receive while that lease is live it is deleted
  (``job.duplicate_copy_deleted``): the holder's own message still carries the job.
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

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final, Protocol

from common import metrics, side_channels
from common.ledger.client import (
    Claim,
    ClaimAnswer,
    ClaimResult,
    JobLedger,
    JobRef,
    LedgerOutcome,
    LedgerUnavailable,
)
from common.ledger.progress import Progress
from common.ledger.schema import JobStatus
from common.logging import get_logger
from common.messages import BackgroundJob, MalformedMessage, parse_background_job
from common.metrics import MetricsEmitter
from common.settings import MAX_VISIBILITY_SECONDS
from common.sqs.hooks import LastAttempt
from common.sqs.in_flight import Lease
from common.sqs.inbound import InboundMessage
from common.sqs.outcome import Outcome, Verdict

log = get_logger(__name__)
POLICY_RETRY = "retry"
POLICY_RUN = "run"
#: Parses a background message and checks its job type; raises MalformedMessage with the reason.
Validator = Callable[[InboundMessage], BackgroundJob]
#: A busy copy comes back this long after the holder's lease ends (plus up to as much again, jittered),
#: so it meets the lease ended, not a moment before, and copies of one job do not return together.
_AFTER_HOLDER_SECONDS: Final = 1.0


def _contract_only(message: InboundMessage) -> BackgroundJob:
    return parse_background_job(message.body, message.attributes)


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
        validator: Validator = _contract_only,
        max_receive_count: int | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``validator`` is the runner's own check (contract and job type), so validation comes before the
        duplicate check; ``max_receive_count`` (the queue's redrive backstop) marks a copy's last receive."""
        self._ledger = ledger
        self._run_when_unavailable = unavailable_policy == POLICY_RUN
        self._metrics = metrics_emitter
        self._signals = signals or NoSignals()
        self._validator = validator
        self._max_receive_count = max_receive_count
        self._wall_clock = wall_clock
        self._rng = random.Random()  # noqa: S311 - jitter, not security

    def admit(self, leases: Sequence[Lease]) -> list[Lease]:
        claimable = [(lease, claim) for lease in leases if (claim := self._claim_for(lease)) is not None]
        if not claimable:
            return list(leases)  # nothing valid: the runner quarantines each with its reason
        try:
            answers = self._ledger.claim_details([claim for _, claim in claimable])
        except LedgerUnavailable as error:
            return self._admit_unclaimed(leases, claimable, error)
        refused: set[int] = set()
        for (lease, claim), answer in zip(claimable, answers, strict=True):
            lease.ledger_job = claim.job.job_id
            if answer.result is ClaimResult.CLAIMED:
                lease.ledger_claimed = True
                lease.attempts = answer.attempts
                if answer.attempts is not None:  # the job's events and context count runs, not receives
                    lease.message = replace(lease.message, ledger_attempt=answer.attempts)
                continue
            refused.add(id(lease))
            lease.ledger_recorded = True  # it never ran here: its outcome is not this job's to record
            lease.attempts = 0  # nor is this delivery an attempt: only the receive-count backstop can end it
            self._refuse(lease, claim.job, answer)
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

    def _refuse(self, lease: Lease, job: JobRef, answer: ClaimAnswer) -> None:
        fields = {"message_id": lease.message.message_id, "job_id": lease.ledger_job}
        if answer.result is ClaimResult.ALREADY_SUCCEEDED:
            log.info("job.duplicate_skipped", **fields, receive_count=lease.message.receive_count)
            with side_channels.METRICS.guard():
                self._metrics.emit({metrics.JOBS_DUPLICATE_SKIPPED: 1})
            lease.finish(Outcome.done())
        elif answer.result is ClaimResult.CANCELLED:
            log.info("job.cancelled", **fields, receive_count=lease.message.receive_count, ran=False)
            with side_channels.METRICS.guard():
                self._metrics.emit({metrics.JOBS_CANCELLED: 1}, jobType=job.job_type)
            with side_channels.JOB_LOG.guard():
                self._signals.cancelled_unrun(job, lease.message)
            lease.finish(Outcome.stopped_on_cancel())
        else:
            self._busy(lease, answer.holder_lease_until_ms, fields)

    def _busy(self, lease: Lease, holder_lease_until_ms: int | None, fields: dict[str, str | None]) -> None:
        """Another delivery runs the job: come back when its lease ends; never go to the DLQ meanwhile.

        On the last receive the queue allows (its redrive would move this copy to the DLQ next), a copy
        whose holder's lease is still live is deleted instead: the holder's own message still carries the
        job, and if the holder dies that message comes back when its visibility (= the lease) ends, so
        deleting the copy loses nothing (docs/reliability.md).
        """
        now_ms = int(self._wall_clock() * 1000)
        live = holder_lease_until_ms is not None and holder_lease_until_ms > now_ms
        receive_count = lease.message.receive_count
        if live and self._max_receive_count is not None and receive_count >= self._max_receive_count:
            log.warning(
                "job.duplicate_copy_deleted",
                **fields,
                receive_count=receive_count,
                holder_lease_until_ms=holder_lease_until_ms,
                reason="last allowed receive while another delivery's lease is live; that delivery carries the job",
            )
            lease.finish(Outcome.done())
            return
        delay = self._after_holder(holder_lease_until_ms, now_ms) if live else None
        log.info("job.claim_busy", **fields, receive_count=receive_count, retry_in_seconds=delay)
        lease.finish(Outcome.retry("job is running under another delivery's live lease", delay_seconds=delay))

    def _after_holder(self, holder_lease_until_ms: int | None, now_ms: int) -> int:
        remaining = max(0, (holder_lease_until_ms or now_ms) - now_ms) / 1000
        delay = remaining + _AFTER_HOLDER_SECONDS + self._rng.uniform(0, _AFTER_HOLDER_SECONDS)
        return min(MAX_VISIBILITY_SECONDS, math.ceil(delay))

    def _claim_for(self, lease: Lease) -> Claim | None:
        """The lease's claim, or None when the message is invalid (the runner quarantines it unclaimed)."""
        try:
            job = self._validator(lease.message)
        except MalformedMessage:
            _note_invalid(lease)
            return None
        return Claim(
            job=JobRef(job_id=job.job_id, job_type=job.job_type, correlation_id=job.correlation_id),
            message_id=lease.message.message_id,
            attempt=lease.message.receive_count,
            lease_until_ms=self._visibility_end_ms(lease),
        )

    def _visibility_end_ms(self, lease: Lease) -> int:
        """The delivery's visibility end (the consumer's monotonic clock) as wall-clock epoch ms."""
        remaining = lease.visible_again_at - lease.registry.clock()
        return int((self._wall_clock() + remaining) * 1000)

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
            # Handed back unrun, so no attempt; a claim that did commit is taken over by its own redelivery.
            lease.attempts = 0
            lease.finish(Outcome.retry(f"job ledger unavailable: {error}"))
        return [lease for lease in leases if id(lease) not in claimed_ids]


def _note_invalid(lease: Lease) -> None:
    """An invalid message that still names a job (say an unknown jobType): unclaimed, its quarantine is
    recorded ``dead`` with the reason at settlement, which the outcome's condition never writes over a
    success or over another delivery's live lease."""
    try:
        job = _contract_only(lease.message)
    except MalformedMessage:
        return
    lease.ledger_job = job.job_id


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
