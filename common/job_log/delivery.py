"""One flush of a job log to CloudWatch Logs: create the stream if needed, put the events, say what was not stored.

A short job costs exactly two calls: CreateLogStream and one PutLogEvents. The job log creates its
stream on a shipper thread as the job opens it (:func:`create_stream`), so the create overlaps the job
instead of holding the job's slot at close; a flush whose stream is not ready yet creates it first. Each
call gets the retries of :mod:`common.job_log.calls` and nothing else. A put answered with
``rejectedLogEventsInfo`` stored the rest of its batch: only the rejected events are reported back,
never the batch (re-logging the whole batch duplicated the accepted events).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from common.job_log.calls import CallFailed, call
from common.job_log.events import LogEvent, batches, rejected

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import PutLogEventsResponseTypeDef

_ALREADY_EXISTS = "ResourceAlreadyExistsException"


@dataclass(slots=True)
class Delivery:
    """What one flush achieved."""

    stream_ready: bool
    #: Answered but refused by PutLogEvents (too old, too new, expired).
    rejected: list[LogEvent] = field(default_factory=list)
    #: Never accepted because a call failed; ``failure`` says why.
    undelivered: list[LogEvent] = field(default_factory=list)
    failure: CallFailed | None = None


@dataclass(frozen=True, slots=True)
class StreamTarget:
    logs: CloudWatchLogsClient
    log_group: str
    stream: str

    def create(self) -> None:
        self.logs.create_log_stream(logGroupName=self.log_group, logStreamName=self.stream)

    def put(self, batch: list[LogEvent]) -> PutLogEventsResponseTypeDef:
        return self.logs.put_log_events(
            logGroupName=self.log_group,
            logStreamName=self.stream,
            logEvents=[{"timestamp": event.timestamp, "message": event.message} for event in batch],
        )


def create_stream(target: StreamTarget) -> CallFailed | None:
    """Create the stream; None when it is there (already there: a retry of this job appends to it)."""
    try:
        call(target.create, idempotent=True)
    except CallFailed as failed:
        if failed.code != _ALREADY_EXISTS:
            return failed
    return None


def deliver(target: StreamTarget, events: list[LogEvent], *, stream_ready: bool) -> Delivery:
    """Ship ``events`` to ``target``, creating the stream first unless ``stream_ready``."""
    if not stream_ready and (failed := create_stream(target)) is not None:
        return Delivery(stream_ready=False, undelivered=events, failure=failed)
    delivery = Delivery(stream_ready=True)
    pending = list(batches(events))
    for index, batch in enumerate(pending):
        try:
            response = call(lambda batch=batch: target.put(batch), idempotent=False)  # type: ignore[misc]
        except CallFailed as failed:
            delivery.undelivered = [event for later in pending[index:] for event in later]
            delivery.failure = failed
            return delivery
        delivery.rejected += rejected(batch, response.get("rejectedLogEventsInfo"))  # type: ignore[arg-type]
    return delivery
