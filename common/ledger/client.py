"""The job ledger client: one DynamoDB item per job, written in batches, so a job's effect happens once.

Every state change is an ``Update`` inside one ``TransactWriteItems`` per SQS batch, so ten jobs cost
one request per state change, as ten deletes cost one DeleteMessageBatch. A transaction is
all-or-nothing, so per-item outcomes come from ``CancellationReasons``: an item whose condition failed
is answered from its old image (``ReturnValuesOnConditionCheckFailure=ALL_OLD``, no extra read) and the
rest of the batch is written again without it. The contract (names, states) is common/ledger/schema.py;
the design and its costs are docs/ledger.md.

botocore's standard retry mode is the only retry layer for throttling and 5xx; what still fails
surfaces as one :class:`LedgerUnavailable`, and the caller applies JOB_LEDGER_UNAVAILABLE.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from common.ledger import days, schema
from common.ledger.progress import Progress
from common.ledger.schema import JobStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef, UpdateTypeDef

#: DynamoDB allows 100 actions per transaction; callers pass one SQS batch (at most 10).
TRANSACTION_LIMIT: Final = 100
#: Rounds of "write the rest again" after cancellations; conflicts beyond this give up for this batch.
_MAX_ROUNDS: Final = 4
_RETRYABLE_REASONS: Final = frozenset({"None", "TransactionConflict", "ThrottlingError"})
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

    def action(self, table: str) -> TransactWriteItemTypeDef:
        update: UpdateTypeDef = {
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
        return {"Update": update}


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
    ) -> None:
        self._dynamodb = dynamodb
        self.table_name = table_name
        self._lease_seconds = lease_seconds
        self._retention_seconds = retention_days * 86_400
        self.worker_id = worker_id or default_worker_id()
        self._clock = clock

    # -- state changes -------------------------------------------------------------------------

    def claim(self, claims: Sequence[Claim]) -> list[ClaimResult]:
        """Claim each job for this worker; results are aligned with ``claims``."""
        now = self._clock()
        updates: dict[str, _Update] = {}
        for claim in claims:
            if claim.job.job_id not in updates:
                updates[claim.job.job_id] = self._claim_update(claim, now)
        refused = self._write(updates)
        skipped = {job_id for job_id, old in refused.items() if _status(old) == JobStatus.SUCCEEDED}
        cancelled = {job_id for job_id, old in refused.items() if job_id not in skipped and is_cancelled(old)}
        self._count_duplicates(skipped)
        results: list[ClaimResult] = []
        seen: set[str] = set()
        for claim in claims:
            job_id = claim.job.job_id
            if job_id in skipped:
                results.append(ClaimResult.ALREADY_SUCCEEDED)
            elif job_id in cancelled:
                results.append(ClaimResult.CANCELLED)
            elif job_id in refused or job_id in seen:
                results.append(ClaimResult.BUSY)
            else:
                results.append(ClaimResult.CLAIMED)
            seen.add(job_id)
        return results

    def extend_leases(
        self,
        job_ids: Sequence[str],
        progress: Mapping[str, Progress] | None = None,
        *,
        lease_until_ms: int | None = None,
    ) -> LeaseCheck:
        """Extend this worker's leases (with the visibility heartbeat), carrying each job's latest progress.

        ``lease_until_ms`` (epoch ms) is the extended deliveries' new visibility end; None: now + lease_seconds.

        The condition (this worker, still ``running``) fails once an operator cancelled the job; the
        refused item's old image tells a cancel from a lost lease at no extra request.
        """
        now = self._clock()
        updates = {}
        for job_id in dict.fromkeys(job_ids):
            update = _Update(job_id)
            until = lease_until_ms if lease_until_ms is not None else self._lease_until_ms(now)
            update.set(schema.ATTR_LEASE_UNTIL, _n(until))
            if progress and (report := progress.get(job_id)) is not None:
                _set_progress(update, report)
            update.condition = (
                f"{update.name(schema.ATTR_WORKER_ID)} = {update.value('me', _s(self.worker_id))}"
                f" AND {update.name(schema.ATTR_STATUS)} = {update.value('running', _s(JobStatus.RUNNING))}"
            )
            updates[job_id] = update
        refused = self._write(updates)
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
        refused = self._write(updates)  # a refused failed/dead otherwise means the job had already succeeded
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

    def _claim_update(self, claim: Claim, now: float) -> _Update:
        update = self._stamped(claim.job.job_id, now)
        self._describe(update, claim.job)
        update.set(schema.ATTR_STATUS, _s(JobStatus.RUNNING))
        update.set(schema.ATTR_ATTEMPT, _n(claim.attempt))
        update.set(schema.ATTR_WORKER_ID, _s(self.worker_id))
        update.set(schema.ATTR_MESSAGE_ID, _s(claim.message_id))
        update.set(schema.ATTR_LEASE_UNTIL, _n(self._lease_until_ms(now)))
        update.set(schema.ATTR_STARTED_AT, _s(iso_timestamp(now)))
        attempts = update.name(schema.ATTR_ATTEMPTS)
        update.expression.append(
            f"{attempts} = if_not_exists({attempts}, {update.value('zero', _n(0))}) + {update.value('one', _n(1))}"
        )
        status, lease = update.name(schema.ATTR_STATUS), update.name(schema.ATTR_LEASE_UNTIL)
        # (":status" is "running" and ":workerId", ":messageId", ":attempt" this claim's, as set above.)
        # Free, or not succeeded, not cancelled and not leased: either not running, its lease expired, or
        # it is this very delivery asking again (botocore retried a claim whose answer was lost).
        update.condition = (
            f"attribute_not_exists({status}) OR ({status} <> {update.value('succeeded', _s(JobStatus.SUCCEEDED))}"
            f" AND {status} <> {update.value('cancelled', _s(JobStatus.CANCELLED))}"
            f" AND attribute_not_exists({update.name(schema.ATTR_CANCEL_REQUESTED_AT)})"
            f" AND ({status} <> :status OR {lease} < {update.value('now', _n(int(now * 1000)))}"
            f" OR ({update.name(schema.ATTR_WORKER_ID)} = :workerId"
            f" AND {update.name(schema.ATTR_MESSAGE_ID)} = :messageId"
            f" AND {update.name(schema.ATTR_ATTEMPT)} = :attempt)))"
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

    def _count_duplicates(self, job_ids: set[str]) -> None:
        updates = {}
        for job_id in job_ids:
            update = _Update(job_id)
            count = update.name(schema.ATTR_DUPLICATES_SKIPPED)
            update.expression.append(
                f"{count} = if_not_exists({count}, {update.value('zero', _n(0))}) + {update.value('one', _n(1))}"
            )
            updates[job_id] = update
        self._write(updates)

    def _lease_until_ms(self, now: float) -> int:
        return int((now + self._lease_seconds) * 1000)

    # -- the transaction loop ------------------------------------------------------------------

    def _write(self, updates: Mapping[str, _Update]) -> dict[str, dict[str, Any]]:
        """Write every update; return the refused ones (condition failed) with their old item."""
        refused: dict[str, dict[str, Any]] = {}
        keys = list(updates)
        for start in range(0, len(keys), TRANSACTION_LIMIT):
            chunk = {key: updates[key] for key in keys[start : start + TRANSACTION_LIMIT]}
            refused.update(self._write_chunk(chunk))
        return refused

    def _write_chunk(self, pending: dict[str, _Update]) -> dict[str, dict[str, Any]]:
        refused: dict[str, dict[str, Any]] = {}
        for _round in range(_MAX_ROUNDS):
            if not pending:
                return refused
            reasons = self._transact(list(pending.values()))
            if reasons is None:
                return refused
            retry: dict[str, _Update] = {}
            for (key, update), reason in zip(pending.items(), reasons, strict=True):
                code = reason.get("Code", "None")
                if code == "ConditionalCheckFailed":
                    refused[key] = reason.get("Item", {})
                elif code in _RETRYABLE_REASONS:
                    retry[key] = update
                else:
                    raise LedgerUnavailable(f"TransactWriteItems refused {key}: {code}: {reason.get('Message', '')}")
            pending = retry
        if pending:
            raise LedgerUnavailable(f"TransactWriteItems kept conflicting for {len(pending)} job(s)")
        return refused

    def _transact(self, updates: list[_Update]) -> list[dict[str, Any]] | None:
        """One TransactWriteItems: None when it committed, else the cancellation reasons in order."""
        try:
            self._dynamodb.transact_write_items(TransactItems=[update.action(self.table_name) for update in updates])
        except ClientError as error:
            if error.response["Error"].get("Code") == "TransactionCanceledException":
                reasons = error.response.get("CancellationReasons", [])
                if len(reasons) == len(updates):
                    return [dict(reason) for reason in reasons]
            raise LedgerUnavailable(f"TransactWriteItems on {self.table_name}: {error}") from error
        except BotoCoreError as error:
            raise LedgerUnavailable(f"TransactWriteItems on {self.table_name}: {error}") from error
        return None


def _status(item: Mapping[str, Any]) -> str:
    return str(item.get(schema.ATTR_STATUS, {}).get("S", ""))


def is_cancelled(item: Mapping[str, Any]) -> bool:
    """An item (DynamoDB JSON) an operator cancelled: ``cancelled``, or any state with a cancel request."""
    return _status(item) == JobStatus.CANCELLED or schema.ATTR_CANCEL_REQUESTED_AT in item


def _set_progress(update: _Update, progress: Progress) -> None:
    update.set(schema.ATTR_PROGRESS, _n(progress.value))
    update.set(schema.ATTR_PROGRESS_NOTE, _s(progress.note))
    update.set(schema.ATTR_PROGRESS_AT, _s(iso_timestamp(progress.at)))
