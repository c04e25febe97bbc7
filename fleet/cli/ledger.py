"""Reading the job ledger for operators: one GetItem per job, one Query per status on ``by-status``.

The table is ``JOB_LEDGER_TABLE`` when that variable is set (empty turns the ledger off, as for the
workers), else the deployment's ``<prefix>-jobs`` (:attr:`common.names.FleetNames.job_ledger_table`),
the same place the queue names come from. Anything that keeps the ledger from answering (no such
table, access denied, endpoint down) is a :class:`LedgerUnavailable` whose text is the one-line note
the commands print before falling back to the logs. The ledger is never scanned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from common.ledger.schema import (
    ATTR_ATTEMPTS,
    ATTR_CANCEL_REASON,
    ATTR_CANCEL_REQUESTED_AT,
    ATTR_CANCELLED_BY,
    ATTR_CORRELATION_ID,
    ATTR_DEAD_REASON,
    ATTR_DURATION_MS,
    ATTR_FINISHED_AT,
    ATTR_JOB_ID,
    ATTR_JOB_TYPE,
    ATTR_LAST_ERROR,
    ATTR_LEASE_UNTIL,
    ATTR_PROGRESS,
    ATTR_PROGRESS_AT,
    ATTR_PROGRESS_NOTE,
    ATTR_RESULT,
    ATTR_STARTED_AT,
    ATTR_STATUS,
    ATTR_UPDATED_AT,
    ATTR_WORKER_ID,
    LEGACY_RETRYING,
    STATUS_INDEX,
    JobStatus,
)
from common.names import FleetNames
from common.settings import ENV_JOB_LEDGER_TABLE
from fleet.cli.render import from_millis

_DESERIALIZER: Final = TypeDeserializer()


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


class Ledger:
    """The ledger table of one deployment, through a DynamoDB client."""

    def __init__(self, dynamodb: Any, table: str) -> None:  # noqa: ANN401 - no DynamoDB stubs are installed
        self._dynamodb = dynamodb
        self._table = table

    def get(self, job_id: str) -> LedgerJob | None:
        """The job's item (one strongly consistent GetItem), or None if the ledger has none."""
        if not self._table:
            raise LedgerUnavailable("job ledger off (JOB_LEDGER_TABLE is empty): status from the logs")
        response = self._call("get_item", TableName=self._table, Key={ATTR_JOB_ID: {"S": job_id}}, ConsistentRead=True)
        item = response.get("Item")
        return LedgerJob.from_item(item) if item else None

    def by_status(self, statuses: Iterable[str], *, since: datetime, legacy: bool = True) -> list[LedgerJob]:
        """Jobs in these states updated at or after ``since``, newest first: one Query per status.

        ``legacy`` also finds ``retrying`` items written ``failed`` before issue 34 (one Query more);
        a reader of the last few minutes only (``fleet top``) can leave it off: no worker writes them now.
        """
        if not self._table:
            raise LedgerUnavailable("job ledger off (JOB_LEDGER_TABLE is empty): listing from the logs")
        start = since.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        found: list[LedgerJob] = []
        for status in statuses:
            found += self._query(status, start)
            if legacy and status == JobStatus.RETRYING.value:
                found += self._query(LEGACY_RETRYING, start)  # items written before the rename
        return sorted(found, key=lambda job: job.updated_at, reverse=True)

    def _query(self, status: str, start: str) -> list[LedgerJob]:
        jobs: list[LedgerJob] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "#status = :status AND #updated >= :since",
            "ExpressionAttributeNames": {"#status": ATTR_STATUS, "#updated": ATTR_UPDATED_AT},
            "ExpressionAttributeValues": {":status": {"S": status}, ":since": {"S": start}},
            "ScanIndexForward": False,
        }
        while True:
            page = self._call("query", **kwargs)
            jobs += [LedgerJob.from_item(item) for item in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return jobs
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:  # noqa: ANN401
        try:
            response: dict[str, Any] = getattr(self._dynamodb, operation)(**kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "?")
            raise LedgerUnavailable(f"job ledger {self._table} unavailable ({code}): from the logs") from None
        except BotoCoreError as error:
            raise LedgerUnavailable(f"job ledger {self._table} unreachable ({error}): from the logs") from None
        return response


ALL_STATUSES: Final = tuple(status.value for status in JobStatus)
#: `fleet jobs --failed`: final failures only. A `retrying` job may still succeed.
FAILED_STATUSES: Final = (JobStatus.DEAD.value,)


def current_status(stored: str) -> str:
    """The state as the CLI names it: ``failed`` items from before issue 34 meant "will retry"."""
    return JobStatus.RETRYING.value if stored == LEGACY_RETRYING else stored
