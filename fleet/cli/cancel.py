"""``fleet cancel JOB_ID``: ask the job ledger to cancel a job, in one conditional write.

The write is :func:`common.ledger.cancel.request_cancel` (one UpdateItem, no read first). Workers act on
it: a job not started yet is never run (its claim is refused and its message deleted, on every
delivery); a running job sees ``job.cancelled`` at its next lease extension, within about half a
visibility timeout, and stops if it checks it. A job that already succeeded or died cannot be cancelled:
the answer says so, changes nothing and exits non-zero.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from common.ledger import schema
from common.ledger.cancel import CancelAnswer, request_cancel
from common.ledger.client import LedgerUnavailable
from common.ledger.schema import JobStatus
from common.settings import ENV_JOB_LEDGER_RETENTION_DAYS
from fleet.cli.errors import OpsError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: What the operator reads after each state a cancel met, when it was accepted.
_WHAT_HAPPENS: Final[Mapping[str, str]] = {
    "": "not in the ledger yet: when main_job queues it, it stays cancelled and never runs",
    JobStatus.QUEUED: "it will not run: its message is deleted when a worker receives it",
    JobStatus.RETRYING: "it will not be retried: its message is deleted at its next delivery",
    JobStatus.RUNNING: (
        "it is running: it sees job.cancelled within about half a visibility timeout and stops if it checks;"
        " one that ignores it runs to the end and the ledger keeps both facts"
    ),
}


@dataclass(frozen=True, slots=True)
class CancelReport:
    job_id: str
    answer: CancelAnswer

    @property
    def ok(self) -> bool:
        """Accepted, or cancelled already (asking twice is not an error); refused on a final state."""
        return self.answer.accepted or self.answer.status == JobStatus.CANCELLED


def operator_identity() -> str:
    """``user@host``: who asked, stored as ``cancelledBy`` (no extra request, e.g. to STS)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def cancel(
    dynamodb: DynamoDBClient, table: str, job_id: str, *, reason: str, by: str, environ: Mapping[str, str]
) -> CancelReport:
    if not table:
        raise OpsError("job ledger off (JOB_LEDGER_TABLE is empty): cancelling needs the job ledger")
    try:
        answer = request_cancel(dynamodb, table, job_id, by=by, reason=reason, retention_days=_retention_days(environ))
    except LedgerUnavailable as error:
        raise OpsError(f"job ledger {table} unavailable: {error}") from None
    return CancelReport(job_id, answer)


def render(report: CancelReport) -> str:
    answer = report.answer
    if answer.accepted:
        return (
            f"cancelled  {report.job_id}  (was {answer.status or 'unknown'})\n"
            f"           {_WHAT_HAPPENS.get(answer.status, '')}\n"
        )
    item = answer.item
    if answer.status == JobStatus.CANCELLED:
        return (
            f"already cancelled  {report.job_id}  at {_text(item, schema.ATTR_CANCEL_REQUESTED_AT)}"
            f" by {_text(item, schema.ATTR_CANCELLED_BY)}: nothing changed\n"
        )
    when = _text(item, schema.ATTR_FINISHED_AT) or _text(item, schema.ATTR_UPDATED_AT)
    return f"not cancelled  {report.job_id}  is already {answer.status} (at {when}): nothing changed\n"


def _text(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    return value if isinstance(value, str) and value else "-"


def _retention_days(environ: Mapping[str, str]) -> int:
    text = environ.get(ENV_JOB_LEDGER_RETENTION_DAYS, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else schema.DEFAULT_RETENTION_DAYS
