"""The job ledger client: one DynamoDB item per job, each state change one conditional UpdateItem.

Every write is a single-item conditional ``UpdateItem`` (1 write unit for an item under 1 KB, where a
``TransactWriteItems`` action costs 2), and a batch's items are written concurrently from a small thread
pool (the boto3 client is thread-safe), so a batch of ten costs ten requests but about one round trip.
An item whose condition failed is answered from its old image (``ReturnValuesOnConditionCheckFailure=
ALL_OLD`` puts it in the ConditionalCheckFailedException's ``Item``: no extra read), and a claim learns
the job's ``attempts`` from ``ReturnValues=UPDATED_NEW`` at no extra cost. The contract (names, states)
is common/ledger/schema.py; the design and its costs are docs/ledger.md.

botocore's standard retry mode retries throttling and 5xx first; throttling that outlasts it
(``ThrottlingException``, ``ProvisionedThroughputExceededException``, ``RequestLimitExceeded``, and
``TransactionConflictException`` when an update races an operator's transaction) is retried here with
jittered exponential backoff for a few seconds more, since DynamoDB returns these while an on-demand
table scales (developer guide, "Error handling": retry throttling with exponential backoff). What still
fails surfaces as one :class:`LedgerUnavailable`, and the caller applies JOB_LEDGER_UNAVAILABLE.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from common.ledger import days, schema
from common.ledger.progress import Progress
from common.ledger.schema import JobStatus
from common.logging import get_logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import UpdateItemInputTypeDef

log = get_logger(__name__)
#: Concurrent UpdateItems per batch: one SQS batch (at most 10) in about one round trip.
WRITE_CONCURRENCY: Final = 10
#: Error codes DynamoDB documents as "slow down and try again": retried with backoff beyond botocore's attempts.
RETRYABLE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",
    }
)
#: How long one item's write keeps retrying throttling (after botocore's own attempts) before giving up.
DEFAULT_RETRY_SECONDS: Final = 3.0
_FIRST_DELAY_SECONDS: Final = 0.05
_MAX_DELAY_SECONDS: Final = 1.0
_CONDITION_FAILED: Final = "ConditionalCheckFailedException"
_TEXT_LIMIT: Final = 1000
_DESERIALIZER: Final = TypeDeserializer()


class LedgerUnavailable(Exception):
    """DynamoDB could not be reached or refused the call after botocore's retries."""


class InvalidResult(ValueError):
    """A job's result is not JSON-serialisable or is larger than the ledger stores (permanent)."""


class ClaimResult(Enum):
    CLAIMED = "claimed"
    #: The job already succeeded: delete the message without running it.
    ALREADY_SUCCEEDED = "already_succeeded"
    #: Another delivery holds a live lease (or comes earlier in this batch): try again later.
    BUSY = "busy"
    #: An operator cancelled the job (``fleet cancel``): delete the message without running it.
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class LeaseCheck:
    """What a lease extension learnt, from the refused items' old images (no extra read)."""

    #: Another delivery took the job over: it may run twice.
    lost: frozenset[str] = frozenset()
    #: An operator asked to cancel the job: its context is told, so it can stop.
    cancelled: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class JobRef:
    job_id: str
    job_type: str
    correlation_id: str


@dataclass(frozen=True, slots=True)
class Claim:
    job: JobRef
    message_id: str
    attempt: int
    #: Epoch ms at which the claim's lease ends: when the claiming delivery's visibility ends, so a
    #: redelivery after a crash never meets the dead worker's lease. None: now + lease_seconds.
    lease_until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ClaimAnswer:
    """A claim's result and what the write learnt on the way, at no extra request."""

    result: ClaimResult
    #: The job's runs started, this claim's included (``attempts`` after the claim); None unless CLAIMED.
    attempts: int | None = None
    #: When BUSY: when the holder's lease ends (epoch ms), from the refused item's old image.
    holder_lease_until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class LedgerOutcome:
    """A finished attempt: ``status`` is SUCCEEDED, RETRYING (will retry) or DEAD; QUEUED gives an
    unstarted claim back (released at shutdown or from a stale receive-ahead buffer)."""

    job_id: str
    status: JobStatus
    attempt: int
    duration_ms: int | None = None
    result_json: str | None = None
    error: str = ""
    #: The job's latest progress report, written with the outcome.
    progress: Progress | None = None


def encode_result(value: object) -> str | None:
    """The JSON text stored for a job's return value; ``None`` stores nothing."""
    if value is None:
        return None
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidResult(f"job result is not JSON-serialisable: {error}") from None
    size = len(text.encode())
    if size > schema.MAX_RESULT_BYTES:
        raise InvalidResult(f"job result is {size} bytes; the ledger stores at most {schema.MAX_RESULT_BYTES}")
    return text


def default_worker_id() -> str:
    """Host and process: unique among live workers, and readable in ``fleet job``."""
    return f"{socket.gethostname()}/{os.getpid()}"


def iso_timestamp(epoch_seconds: float) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``, so timestamps sort as strings."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class _Update:
    """One Update action under construction: names and values are registered as they are used."""

    key: str
    expression: list[str] = field(default_factory=list)
    condition: str = ""
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    #: Ask for the updated attributes (``ReturnValues=UPDATED_NEW``, free): a claim learns ``attempts``.
    return_new: bool = False

    def name(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, label: str, dynamo_value: Mapping[str, Any]) -> str:
        placeholder = f":{label}"
        self.values[placeholder] = dict(dynamo_value)
        return placeholder

    def set(self, attribute: str, dynamo_value: Mapping[str, Any], *, keep_existing: bool = False) -> None:
        target = self.name(attribute)
        value = self.value(attribute, dynamo_value)
        self.expression.append(
            f"{target} = if_not_exists({target}, {value})" if keep_existing else f"{target} = {value}"
        )

    def request(self, table: str) -> UpdateItemInputTypeDef:
        """The UpdateItem call: a refusal carries the old item, a success the updated attributes."""
        update: UpdateItemInputTypeDef = {
            "TableName": table,
            "Key": {schema.ATTR_JOB_ID: {"S": self.key}},
            "UpdateExpression": "SET " + ", ".join(self.expression),
            "ExpressionAttributeNames": self.names,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if self.values:
            update["ExpressionAttributeValues"] = self.values
        if self.condition:
            update["ConditionExpression"] = self.condition
        if self.return_new:
            update["ReturnValues"] = "UPDATED_NEW"
        return update


def _s(text: str) -> dict[str, str]:
    return {"S": text}


def _n(number: float) -> dict[str, str]:
    return {"N": str(number)}


class JobLedger:
    """Batch writes of job states; one instance per worker process, shared by its threads."""

    def __init__(
        self,
        *,
        dynamodb: DynamoDBClient,
        table_name: str,
        lease_seconds: float,
        retention_days: int = schema.DEFAULT_RETENTION_DAYS,
        worker_id: str | None = None,
        clock: Callable[[], float] = time.time,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``retry_seconds`` bounds one item's throttling retries after botocore's own attempts gave up (on
        ``monotonic``, each retry's own botocore attempts included); ``sleep`` waits between them."""
        self._dynamodb = dynamodb
        self.table_name = table_name
        self._lease_seconds = lease_seconds
        self._retention_seconds = retention_days * 86_400
        self.worker_id = worker_id or default_worker_id()
        self._clock = clock
        self._retry_seconds = retry_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- state changes -------------------------------------------------------------------------

    def claim(self, claims: Sequence[Claim]) -> list[ClaimResult]:
        """Claim each job for this worker; results are aligned with ``claims``."""
        return [answer.result for answer in self.claim_details(claims)]

    def claim_details(self, claims: Sequence[Claim]) -> list[ClaimAnswer]:
        """Claim each job for this worker, with the job's attempts (claimed) or the holder's lease end (busy).

        One write per job, however many copies the batch holds: the first copy claims, a later copy of a
        job claimed here is BUSY under that claim's lease. The ``duplicatesSkipped`` counter is a side
        write: it is counted once per skipped copy, and its failure is logged, never the claims' fate.
        """
        now = self._clock()
        updates: dict[str, _Update] = {}
        for claim in claims:
            if claim.job.job_id not in updates:
                updates[claim.job.job_id] = self._claim_update(claim, now)
        written = self._write(updates)
        answers: list[ClaimAnswer] = []
        first_copy: dict[str, ClaimAnswer] = {}
        for claim in claims:
            job_id = claim.job.job_id
            earlier = first_copy.get(job_id)
            if earlier is None:
                answer = first_copy[job_id] = _claim_answer(written, job_id)
            elif earlier.result is ClaimResult.CLAIMED:
                answer = ClaimAnswer(ClaimResult.BUSY, holder_lease_until_ms=self._claim_lease_ms(claims, job_id, now))
            else:
                answer = replace(earlier, attempts=None)
            answers.append(answer)
        skipped = Counter(
            claim.job.job_id
            for claim, answer in zip(claims, answers, strict=True)
            if answer.result is ClaimResult.ALREADY_SUCCEEDED
        )
        self._count_duplicates(skipped)
        return answers

    def extend_leases(
        self,
        job_ids: Sequence[str],
        progress: Mapping[str, Progress] | None = None,
        *,
        lease_until_ms: int | None = None,
    ) -> LeaseCheck:
        """Extend this worker's leases (with the visibility heartbeat), carrying each job's latest progress.

        ``lease_until_ms`` is the new visibility end of the extended deliveries (None: now + lease_seconds),
        so a lease never outlives the visibility of the delivery that holds it. The condition (this
        worker, still ``running``) fails once an operator cancelled the job; the refused item's old image
        tells a cancel from a lost lease at no extra request.
        """
        now = self._clock()
        until = lease_until_ms if lease_until_ms is not None else self._lease_until_ms(now)
        updates = {}
        for job_id in dict.fromkeys(job_ids):
            update = _Update(job_id)
            update.set(schema.ATTR_LEASE_UNTIL, _n(until))
            if progress and (report := progress.get(job_id)) is not None:
                _set_progress(update, report)
            update.condition = (
                f"{update.name(schema.ATTR_WORKER_ID)} = {update.value('me', _s(self.worker_id))}"
                f" AND {update.name(schema.ATTR_STATUS)} = {update.value('running', _s(JobStatus.RUNNING))}"
            )
            updates[job_id] = update
        refused = self._write(updates).refused
        cancelled = frozenset(job_id for job_id, old in refused.items() if is_cancelled(old))
        return LeaseCheck(lost=frozenset(refused) - cancelled, cancelled=cancelled)

    def record(self, outcomes: Sequence[LedgerOutcome]) -> set[str]:
        """Finished attempts; a failure or death never overwrites a success.

        Returns the jobs whose retry (failed) or release (queued) was refused because an operator
        cancelled them: their item stays ``cancelled`` and their message is not worth handing back.
        """
        now = self._clock()
        updates = {}
        for outcome in outcomes:
            update = self._stamped(outcome.job_id, now)
            update.set(schema.ATTR_STATUS, _s(outcome.status))
            update.set(schema.ATTR_ATTEMPT, _n(outcome.attempt))
            if outcome.progress is not None:
                _set_progress(update, outcome.progress)
            self._describe_outcome(update, outcome, now, self.worker_id)
            updates[outcome.job_id] = update
        refused = self._write(updates).refused  # a refused failed/dead otherwise means it had already succeeded
        return {job_id for job_id, old in refused.items() if is_cancelled(old) and _status(old) != JobStatus.SUCCEEDED}

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job's item as plain Python values, or None."""
        try:
            response = self._dynamodb.get_item(
                TableName=self.table_name, Key={schema.ATTR_JOB_ID: {"S": job_id}}, ConsistentRead=True
            )
        except (BotoCoreError, ClientError) as error:
            raise LedgerUnavailable(f"GetItem on {self.table_name}: {error}") from error
        item = response.get("Item")
        return None if item is None else {key: _DESERIALIZER.deserialize(value) for key, value in item.items()}

    # -- building updates ----------------------------------------------------------------------

    def _stamped(self, job_id: str, now: float) -> _Update:
        update = _Update(job_id)
        update.set(schema.ATTR_UPDATED_AT, _s(iso_timestamp(now)))
        update.set(schema.ATTR_EXPIRES_AT, _n(int(now) + self._retention_seconds))
        # Every write that can create the item sets the by-day key; if_not_exists keeps it unchanged after,
        # so the index is written once per job (an unchanged key and no projected change write nothing).
        update.set(schema.ATTR_QUEUED_DAY, _s(days.queued_day(job_id, now)), keep_existing=True)
        # main_job writes no "queued" item: the job ID's ULID time is when it was queued (kept like queuedDay).
        update.set(schema.ATTR_QUEUED_AT, _s(iso_timestamp(days.queued_time(job_id, now))), keep_existing=True)
        return update

    @staticmethod
    def _describe(update: _Update, job: JobRef) -> None:
        update.set(schema.ATTR_JOB_TYPE, _s(job.job_type), keep_existing=True)
        update.set(schema.ATTR_CORRELATION_ID, _s(job.correlation_id), keep_existing=True)

    def _claim_lease_ms(self, claims: Sequence[Claim], job_id: str, now: float) -> int:
        """The lease the first copy of ``job_id`` in ``claims`` was claimed under."""
        first = next(claim for claim in claims if claim.job.job_id == job_id)
        return first.lease_until_ms if first.lease_until_ms is not None else self._lease_until_ms(now)

    def _claim_update(self, claim: Claim, now: float) -> _Update:
        update = self._stamped(claim.job.job_id, now)
        update.return_new = True
        self._describe(update, claim.job)
        update.set(schema.ATTR_STATUS, _s(JobStatus.RUNNING))
        update.set(schema.ATTR_ATTEMPT, _n(claim.attempt))
        update.set(schema.ATTR_WORKER_ID, _s(self.worker_id))
        update.set(schema.ATTR_MESSAGE_ID, _s(claim.message_id))
        lease_until_ms = claim.lease_until_ms if claim.lease_until_ms is not None else self._lease_until_ms(now)
        update.set(schema.ATTR_LEASE_UNTIL, _n(lease_until_ms))
        update.set(schema.ATTR_STARTED_AT, _s(iso_timestamp(now)))
        attempts = update.name(schema.ATTR_ATTEMPTS)
        update.expression.append(
            f"{attempts} = if_not_exists({attempts}, {update.value('zero', _n(0))}) + {update.value('one', _n(1))}"
        )
        status, lease = update.name(schema.ATTR_STATUS), update.name(schema.ATTR_LEASE_UNTIL)
        # (":status" is "running" and ":workerId", ":messageId", ":attempt" this claim's, as set above.)
        # Free, or not succeeded, not cancelled and not leased: either not running, its lease expired, or
        # the holder is this same SQS message. Received again with a higher receive count, it is a
        # redelivery: SQS delivers a message again only once the previous delivery's visibility ended, so
        # that holder's delivery is over whoever received it (a crash between receive and claim, a batch
        # handed back after a claim write failed) and the redelivery takes its own earlier claim over.
        # With the same receive count, only the very same delivery asking again (botocore retried a claim
        # whose answer was lost) may: two copies of one message received at once stay one run.
        message_id, attempt = update.name(schema.ATTR_MESSAGE_ID), update.name(schema.ATTR_ATTEMPT)
        update.condition = (
            f"attribute_not_exists({status}) OR ({status} <> {update.value('succeeded', _s(JobStatus.SUCCEEDED))}"
            f" AND {status} <> {update.value('cancelled', _s(JobStatus.CANCELLED))}"
            f" AND attribute_not_exists({update.name(schema.ATTR_CANCEL_REQUESTED_AT)})"
            f" AND ({status} <> :status OR {lease} < {update.value('now', _n(int(now * 1000)))}"
            f" OR ({message_id} = :messageId AND ({attempt} < :attempt"
            f" OR ({update.name(schema.ATTR_WORKER_ID)} = :workerId AND {attempt} = :attempt)))))"
        )
        return update

    @staticmethod
    def _describe_outcome(update: _Update, outcome: LedgerOutcome, now: float, worker_id: str) -> None:
        # A success (or a job that stopped on a cancel) is written over "cancelled": the item then keeps
        # both facts, cancelRequestedAt and how the job ended.
        if outcome.status in (JobStatus.SUCCEEDED, JobStatus.CANCELLED):
            update.set(schema.ATTR_FINISHED_AT, _s(iso_timestamp(now)))
            if outcome.duration_ms is not None:
                update.set(schema.ATTR_DURATION_MS, _n(outcome.duration_ms))
        if outcome.status is JobStatus.SUCCEEDED:
            if outcome.result_json is not None:
                update.set(schema.ATTR_RESULT, _s(outcome.result_json))
            return
        if outcome.status in (JobStatus.RETRYING, JobStatus.DEAD):  # QUEUED: a claim given back unstarted, no error
            field_name = schema.ATTR_DEAD_REASON if outcome.status is JobStatus.DEAD else schema.ATTR_LAST_ERROR
            update.set(field_name, _s(outcome.error[:_TEXT_LIMIT] or "unknown"))
        if outcome.status is JobStatus.DEAD:  # the sparse failures index: only a death enters it
            update.set(schema.ATTR_FAILED_DAY, _s(days.utc_day(now)))
        status, lease = update.name(schema.ATTR_STATUS), update.name(schema.ATTR_LEASE_UNTIL)
        # Never over a success, nor over another worker's live lease: a stale attempt's failure must not
        # make a job claimable while someone else runs it.
        update.condition = (
            f"attribute_not_exists({status}) OR ({status} <> {update.value('succeeded', _s(JobStatus.SUCCEEDED))}"
            f" AND ({status} <> {update.value('running', _s(JobStatus.RUNNING))}"
            f" OR {update.name(schema.ATTR_WORKER_ID)} = {update.value('me', _s(worker_id))}"
            f" OR {lease} < {update.value('now', _n(int(now * 1000)))}))"
        )
        if outcome.status in (JobStatus.RETRYING, JobStatus.QUEUED):
            # A retry or a release would make a cancelled job claimable-looking again: it stays cancelled.
            update.condition = (
                f"({update.condition}) AND attribute_not_exists({update.name(schema.ATTR_CANCEL_REQUESTED_AT)})"
            )

    def _count_duplicates(self, copies: Mapping[str, int]) -> None:
        """Best effort: add each job's skipped copies to ``duplicatesSkipped``; a failure is only logged."""
        updates = {}
        for job_id, count in copies.items():
            update = _Update(job_id)
            total = update.name(schema.ATTR_DUPLICATES_SKIPPED)
            update.expression.append(
                f"{total} = if_not_exists({total}, {update.value('zero', _n(0))}) + {update.value('copies', _n(count))}"
            )
            updates[job_id] = update
        if not updates:
            return
        try:
            self._write(updates)
        except LedgerUnavailable as error:
            # A statistic: the claims it follows are committed and stand whatever becomes of it.
            log.warning("ledger.duplicate_count_failed", jobs=sorted(updates), error=str(error))

    def _lease_until_ms(self, now: float) -> int:
        return int((now + self._lease_seconds) * 1000)

    # -- the write loop ------------------------------------------------------------------------

    def _write(self, updates: Mapping[str, _Update]) -> _Written:
        """Write every update concurrently; raise LedgerUnavailable if any could not be written.

        Items are independent (single-item conditions), so one that failed leaves the others written:
        each caller is safe against that (a claim handed back is taken over by its own redelivery).
        """
        if not updates:
            return _Written()
        if len(updates) == 1:
            answers = [self._write_one(update) for update in updates.values()]
        else:
            answers = list(self._executor().map(self._write_one, updates.values()))
        written = _Written()
        failures: list[str] = []
        for key, (kind, image) in zip(updates, answers, strict=True):
            if kind == "refused":
                written.refused[key] = image
            elif kind == "written":
                written.new[key] = image
            else:
                failures.append(f"{key}: {image.get('error', '')}")
        if failures:
            raise LedgerUnavailable(f"UpdateItem on {self.table_name} failed for {len(failures)} job(s): {failures[0]}")
        return written

    def _write_one(self, update: _Update) -> tuple[str, dict[str, Any]]:
        """("written", new attributes), ("refused", old item) or ("failed", {"error": text}); never raises."""
        # The bound counts from botocore's first give-up: its own attempts (and backoff) come first.
        deadline: float | None = None
        delay = _FIRST_DELAY_SECONDS
        while True:
            try:
                response = self._dynamodb.update_item(**update.request(self.table_name))
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code == _CONDITION_FAILED:
                    old: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
                    return "refused", dict(old)
                pause = self._rng.uniform(delay / 2, delay)  # "equal jitter": spread, but always some wait
                now = self._monotonic()
                deadline = now + self._retry_seconds if deadline is None else deadline
                if code not in RETRYABLE_CODES or now + pause > deadline:
                    return "failed", {"error": f"{code or type(error).__name__}: {error}"}
                self._sleep(pause)
                delay = min(_MAX_DELAY_SECONDS, delay * 2)
            except BotoCoreError as error:
                return "failed", {"error": f"{type(error).__name__}: {error}"}
            else:
                return "written", dict(response.get("Attributes", {}))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=WRITE_CONCURRENCY, thread_name_prefix="ledger-write")
            return self._pool


@dataclass(slots=True)
class _Written:
    """What a batch of writes answered, by key: the refused items' old images, the written ones' new values."""

    refused: dict[str, dict[str, Any]] = field(default_factory=dict)
    new: dict[str, dict[str, Any]] = field(default_factory=dict)


def _claim_answer(written: _Written, job_id: str) -> ClaimAnswer:
    """A claim write's answer: claimed (with attempts), or refused and why, from the old image."""
    old = written.refused.get(job_id)
    if old is None:
        attempts = written.new.get(job_id, {}).get(schema.ATTR_ATTEMPTS, {}).get("N")
        return ClaimAnswer(ClaimResult.CLAIMED, attempts=int(attempts) if attempts is not None else None)
    if _status(old) == JobStatus.SUCCEEDED:
        return ClaimAnswer(ClaimResult.ALREADY_SUCCEEDED)
    if is_cancelled(old):
        return ClaimAnswer(ClaimResult.CANCELLED)
    lease = old.get(schema.ATTR_LEASE_UNTIL, {}).get("N")
    return ClaimAnswer(ClaimResult.BUSY, holder_lease_until_ms=int(lease) if lease is not None else None)


def _status(item: Mapping[str, Any]) -> str:
    return str(item.get(schema.ATTR_STATUS, {}).get("S", ""))


def is_cancelled(item: Mapping[str, Any]) -> bool:
    """An item (DynamoDB JSON) an operator cancelled: ``cancelled``, or any state with a cancel request."""
    return _status(item) == JobStatus.CANCELLED or schema.ATTR_CANCEL_REQUESTED_AT in item


def _set_progress(update: _Update, progress: Progress) -> None:
    update.set(schema.ATTR_PROGRESS, _n(progress.value))
    update.set(schema.ATTR_PROGRESS_NOTE, _s(progress.note))
    update.set(schema.ATTR_PROGRESS_AT, _s(iso_timestamp(progress.at)))
