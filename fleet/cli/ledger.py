"""Reading the job ledger for operators: one GetItem per job; listings by UTC day on the keys-only indexes.

``fleet jobs --since`` is one Query per UTC day in the window on ``by-day`` (jobs *queued* since: the
time in the job ID), ``--failed`` one per day on the sparse ``failures`` index (jobs that *died* since);
both then read the listed items with BatchGetItem (eventually consistent, half a read unit per 4 KB) and
filter the state here. Each listing reports the read units DynamoDB says it consumed.
Items written before the indexes existed have no ``queuedDay``: ``fleet job <id>`` (GetItem) finds them,
listings do not (TTL ages them out).

The table is ``JOB_LEDGER_TABLE`` when that variable is set (empty turns the ledger off, as for the
workers), else the deployment's ``<prefix>-jobs`` (:attr:`common.names.FleetNames.job_ledger_table`),
the same place the queue names come from. Anything that keeps the ledger from answering (no such
table, access denied, endpoint down) is a :class:`LedgerUnavailable` whose text is the one-line note
the commands print before falling back to the logs. The ledger is never scanned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from common.ledger.days import days_in, first_job_id_at
from common.ledger.schema import (
    ATTR_ATTEMPTS,
    ATTR_CANCEL_REASON,
    ATTR_CANCEL_REQUESTED_AT,
    ATTR_CANCELLED_BY,
    ATTR_CORRELATION_ID,
    ATTR_DEAD_REASON,
    ATTR_DURATION_MS,
    ATTR_FAILED_DAY,
    ATTR_FINISHED_AT,
    ATTR_JOB_ID,
    ATTR_JOB_TYPE,
    ATTR_LAST_ERROR,
    ATTR_LEASE_UNTIL,
    ATTR_PROGRESS,
    ATTR_PROGRESS_AT,
    ATTR_PROGRESS_NOTE,
    ATTR_QUEUED_DAY,
    ATTR_RESULT,
    ATTR_STARTED_AT,
    ATTR_STATUS,
    ATTR_UPDATED_AT,
    ATTR_WORKER_ID,
    DAY_INDEX,
    FAILURES_INDEX,
    LEGACY_RETRYING,
    JobStatus,
)
from common.names import FleetNames
from common.settings import ENV_JOB_LEDGER_TABLE
from fleet.cli.render import from_millis

_DESERIALIZER: Final = TypeDeserializer()
#: BatchGetItem takes at most 100 keys a request (DynamoDB API reference).
BATCH_GET_LIMIT: Final = 100
#: Rounds of asking again for UnprocessedKeys, with exponential backoff from this many seconds.
_UNPROCESSED_ROUNDS: Final = 5
_UNPROCESSED_BACKOFF: Final = 0.05


class LedgerUnavailable(Exception):
    """The ledger is off or cannot answer; the message is the note shown before the logs' answer."""


def table_name(names: FleetNames, environ: Mapping[str, str]) -> str:
    """``JOB_LEDGER_TABLE`` if set (empty: off, returned as ""), else the deployment's table."""
    if ENV_JOB_LEDGER_TABLE in environ:
        return environ[ENV_JOB_LEDGER_TABLE].strip()
    return names.job_ledger_table


@dataclass(frozen=True, slots=True)
class LedgerJob:
    """One ledger item as operators read it."""

    job_id: str
    status: str
    job_type: str
    correlation_id: str
    attempts: int
    worker_id: str
    lease_until: datetime | None
    updated_at: str
    started_at: str
    finished_at: str
    duration_ms: float | None
    result: str
    last_error: str
    dead_reason: str
    cancel_requested_at: str = ""
    cancelled_by: str = ""
    cancel_reason: str = ""
    progress: float | None = None
    progress_note: str = ""
    progress_at: str = ""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> LedgerJob:
        plain = {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}

        def text(name: str) -> str:
            value = plain.get(name)
            return value if isinstance(value, str) else ""

        lease, duration, progress = plain.get(ATTR_LEASE_UNTIL), plain.get(ATTR_DURATION_MS), plain.get(ATTR_PROGRESS)
        return cls(
            job_id=text(ATTR_JOB_ID),
            status=current_status(text(ATTR_STATUS)),
            job_type=text(ATTR_JOB_TYPE),
            correlation_id=text(ATTR_CORRELATION_ID),
            attempts=int(plain.get(ATTR_ATTEMPTS) or 0),
            worker_id=text(ATTR_WORKER_ID),
            lease_until=from_millis(int(lease)) if lease is not None else None,
            updated_at=text(ATTR_UPDATED_AT),
            started_at=text(ATTR_STARTED_AT),
            finished_at=text(ATTR_FINISHED_AT),
            duration_ms=float(duration) if duration is not None else None,
            result=text(ATTR_RESULT),
            last_error=text(ATTR_LAST_ERROR),
            dead_reason=text(ATTR_DEAD_REASON),
            cancel_requested_at=text(ATTR_CANCEL_REQUESTED_AT),
            cancelled_by=text(ATTR_CANCELLED_BY),
            cancel_reason=text(ATTR_CANCEL_REASON),
            progress=float(progress) if progress is not None else None,
            progress_note=text(ATTR_PROGRESS_NOTE),
            progress_at=text(ATTR_PROGRESS_AT),
        )

    def progress_text(self) -> str:
        """``42%`` for a fraction, ``1200`` for a count, with the note; ``-`` without a report."""
        if self.progress is None:
            return "-"
        shown = f"{self.progress:.0%}" if self.progress <= 1 else f"{self.progress:g}"
        return f"{shown} {self.progress_note}".rstrip()

    def result_value(self) -> Any:  # noqa: ANN401 - a job's result is any JSON value
        """The result as JSON if it parses (it is stored as JSON text), else the text itself."""
        try:
            return json.loads(self.result) if self.result else None
        except ValueError:
            return self.result

    def view(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status,
            "job_type": self.job_type,
            "correlation_id": self.correlation_id,
            "attempts": self.attempts,
            "worker_id": self.worker_id or None,
            "lease_until": self.lease_until.astimezone(UTC).isoformat() if self.lease_until else None,
            "updated_at": self.updated_at or None,
            "started_at": self.started_at or None,
            "finished_at": self.finished_at or None,
            "duration_ms": self.duration_ms,
            "result": self.result_value(),
            "last_error": self.last_error or None,
            "dead_reason": self.dead_reason or None,
            "cancel_requested_at": self.cancel_requested_at or None,
            "cancelled_by": self.cancelled_by or None,
            "cancel_reason": self.cancel_reason or None,
            "progress": self.progress,
            "progress_note": self.progress_note or None,
            "progress_at": self.progress_at or None,
        }


@dataclass(frozen=True, slots=True)
class Listing:
    """Jobs listed from the indexes, and what the listing cost (DynamoDB's own ConsumedCapacity)."""

    jobs: list[LedgerJob]
    requests: int
    read_units: float

    def cost_note(self) -> str:
        """One line for stderr: requests and read units as DynamoDB reported them."""
        return (
            f"fleet: note: ledger read {self.requests} request(s), {self.read_units:g} read units"
            " (DynamoDB's ConsumedCapacity; the local emulator's figure is its own)"
        )


@dataclass
class _Reads:
    """The requests a listing made and the read units DynamoDB said they consumed."""

    requests: int = 0
    read_units: float = 0.0

    def count(self, response: Mapping[str, Any]) -> None:
        self.requests += 1
        consumed = response.get("ConsumedCapacity") or []
        for entry in consumed if isinstance(consumed, list) else [consumed]:
            self.read_units += float(entry.get("CapacityUnits") or 0)


class Ledger:
    """The ledger table of one deployment, through a DynamoDB client: GetItem, Query, BatchGetItem; never Scan."""

    def __init__(
        self,
        dynamodb: Any,  # noqa: ANN401 - no DynamoDB stubs are installed
        table: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._sleep = sleep

    def get(self, job_id: str) -> LedgerJob | None:
        """The job's item (one strongly consistent GetItem), or None if the ledger has none.

        Finds every item, including one written before the indexes existed (no ``queuedDay``).
        """
        self._require("ledger off (JOB_LEDGER_TABLE is empty): status from the logs")
        response = self._call("get_item", TableName=self._table, Key={ATTR_JOB_ID: {"S": job_id}}, ConsistentRead=True)
        item = response.get("Item")
        return LedgerJob.from_item(item) if item else None

    def queued_since(self, since: datetime, *, now: datetime, statuses: Iterable[str] | None = None) -> Listing:
        """Jobs queued at or after ``since`` (their job ID's time), newest first, in ``statuses`` if given.

        One Query per UTC day on ``by-day`` (``jobId >=`` the smallest ULID of ``since``), then
        BatchGetItem (eventually consistent, 100 keys a request) for the items; the state is filtered here.
        """
        self._require("ledger off (JOB_LEDGER_TABLE is empty): listing from the logs")
        reads = _Reads()
        first = first_job_id_at(since)
        job_ids = [
            job_id
            for day in days_in(since, now)
            for job_id in self._index_keys(reads, DAY_INDEX, ATTR_QUEUED_DAY, day, first)
        ]
        wanted = set(statuses) if statuses is not None else None
        jobs = [job for job in self._items(reads, job_ids) if wanted is None or job.status in wanted]
        return Listing(sorted(jobs, key=lambda job: job.job_id, reverse=True), reads.requests, reads.read_units)

    def failed_since(self, since: datetime, *, now: datetime) -> Listing:
        """Jobs that died at or after ``since`` and are still dead, newest death first.

        One Query per UTC day on the sparse ``failures`` index (only dead jobs are in it), then
        BatchGetItem; a job redriven since it died (no longer ``dead``) is left out.
        """
        self._require("ledger off (JOB_LEDGER_TABLE is empty): listing from the logs")
        reads = _Reads()
        job_ids = [
            job_id
            for day in days_in(since, now)
            for job_id in self._index_keys(reads, FAILURES_INDEX, ATTR_FAILED_DAY, day)
        ]
        start = iso_text(since)
        jobs = [
            job for job in self._items(reads, job_ids) if job.status == JobStatus.DEAD.value and job.updated_at >= start
        ]
        return Listing(sorted(jobs, key=lambda job: job.updated_at, reverse=True), reads.requests, reads.read_units)

    def newest_job_ids(self, since: datetime, *, now: datetime, limit: int) -> list[str]:
        """At most ``limit`` job IDs queued at or after ``since``, newest first: one page per day, newest day first.

        Bounded whatever the load (``fleet top``): today's Query, and yesterday's only when the window
        crosses midnight and today's page was not full.
        """
        self._require("ledger off (JOB_LEDGER_TABLE is empty)")
        first = first_job_id_at(since)
        found: list[str] = []
        for day in reversed(days_in(since, now)):
            page = self._call(
                "query", **self._index_query(DAY_INDEX, ATTR_QUEUED_DAY, day, first), Limit=limit - len(found)
            )
            found += [item[ATTR_JOB_ID]["S"] for item in page.get("Items", [])]
            if len(found) >= limit:
                break
        return found

    def items(self, job_ids: Sequence[str]) -> list[LedgerJob]:
        """The items of these jobs (BatchGetItem, eventually consistent); IDs with no item are left out."""
        self._require("ledger off (JOB_LEDGER_TABLE is empty)")
        return self._items(_Reads(), job_ids)

    def _index_keys(self, reads: _Reads, index: str, day_attribute: str, day: str, first: str = "") -> list[str]:
        kwargs = self._index_query(index, day_attribute, day, first)
        found: list[str] = []
        while True:
            page = self._call("query", **kwargs)
            reads.count(page)
            found += [item[ATTR_JOB_ID]["S"] for item in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _index_query(self, index: str, day_attribute: str, day: str, first: str) -> dict[str, Any]:
        """A newest-first Query of one day's partition, from job ID ``first`` on when given."""
        condition = "#day = :day" + (" AND #job >= :first" if first else "")
        values: dict[str, Any] = {":day": {"S": day}}
        names = {"#day": day_attribute}
        if first:
            values[":first"] = {"S": first}
            names["#job"] = ATTR_JOB_ID
        return {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "ReturnConsumedCapacity": "TOTAL",
        }

    def _items(self, reads: _Reads, job_ids: Sequence[str]) -> list[LedgerJob]:
        """BatchGetItem in requests of 100 keys; unprocessed keys are asked again with backoff (AWS's advice)."""
        found: dict[str, LedgerJob] = {}
        unique = list(dict.fromkeys(job_ids))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            pending: list[dict[str, Any]] = [
                {ATTR_JOB_ID: {"S": job_id}} for job_id in unique[start : start + BATCH_GET_LIMIT]
            ]
            for attempt in range(_UNPROCESSED_ROUNDS):
                if not pending:
                    break
                if attempt:
                    self._sleep(_UNPROCESSED_BACKOFF * 2**attempt)
                page = self._call(
                    "batch_get_item",
                    RequestItems={self._table: {"Keys": pending}},
                    ReturnConsumedCapacity="TOTAL",
                )
                reads.count(page)
                for item in page.get("Responses", {}).get(self._table, []):
                    job = LedgerJob.from_item(item)
                    found[job.job_id] = job
                pending = list(page.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", []))
            if pending:
                raise LedgerUnavailable(f"job ledger {self._table} throttled the listing's reads: from the logs")
        return [found[job_id] for job_id in unique if job_id in found]

    def _require(self, note: str) -> None:
        if not self._table:
            raise LedgerUnavailable(f"job {note}")

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:  # noqa: ANN401
        try:
            response: dict[str, Any] = getattr(self._dynamodb, operation)(**kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "?")
            raise LedgerUnavailable(f"job ledger {self._table} unavailable ({code}): from the logs") from None
        except BotoCoreError as error:
            raise LedgerUnavailable(f"job ledger {self._table} unreachable ({error}): from the logs") from None
        return response


def iso_text(moment: datetime) -> str:
    """The ledger's timestamp form (UTC, milliseconds, ``Z``), to compare with ``updatedAt``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


ALL_STATUSES: Final = tuple(status.value for status in JobStatus)
#: `fleet jobs --failed`: final failures only. A `retrying` job may still succeed.
FAILED_STATUSES: Final = (JobStatus.DEAD.value,)


def current_status(stored: str) -> str:
    """The state as the CLI names it: ``failed`` items from before issue 34 meant "will retry"."""
    return JobStatus.RETRYING.value if stored == LEGACY_RETRYING else stored
