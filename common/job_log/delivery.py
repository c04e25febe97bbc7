"""One flush of a job log to CloudWatch Logs: create the stream if needed, put the events, say what was not stored.

A short job costs exactly two calls: CreateLogStream and one PutLogEvents. The job log creates its
stream on a shipper thread as the job opens it (:func:`create_stream`), so the create overlaps the job
instead of holding the job's slot at close; a flush whose stream is not ready yet creates it first. Each
call gets the retries of :mod:`common.job_log.calls` and nothing else. A put answered with
``rejectedLogEventsInfo`` stored the rest of its batch: only the rejected events are reported back,
never the batch (re-logging the whole batch duplicated the accepted events).

A put that was sent and never answered (a connection reset, a read timeout) may or may not be stored,
and CloudWatch Logs has no idempotency token to ask. It is sent once more, each event marked
``"resent": true``: a job's stream then survives a reset (2.5 % of puts at 5 % injected faults, more
than the 1 % of jobs allowed to lose their stream), at the price that the stream can hold an event twice,
the second copy saying it is one. A second unanswered put goes to the fallback: an event is in the
stream at most twice, and in the stream or on stdout always.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

from common.job_log.calls import CallFailed, Failure, call
from common.job_log.events import MAX_MESSAGE_BYTES, LogEvent, batches, rejected

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import PutLogEventsResponseTypeDef

_ALREADY_EXISTS = "ResourceAlreadyExistsException"
#: Appended inside each re-sent event's JSON object.
_RESENT: Final = ',"resent":true}'
T = TypeVar("T")


@dataclass(slots=True)
class Delivery:
    """What one flush achieved."""

    stream_ready: bool
    #: Answered but refused by PutLogEvents (too old, too new, expired).
    rejected: list[LogEvent] = field(default_factory=list)
    #: Never accepted because a call failed; ``failure`` says why.
    undelivered: list[LogEvent] = field(default_factory=list)
    failure: CallFailed | None = None
    #: The slowest call's duration in seconds (the breaker counts a slow Logs like a failing one).
    slowest_seconds: float = 0.0


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
    delivery = Delivery(stream_ready=True)
    if not stream_ready:
        failed = _timed(delivery, lambda: create_stream(target))
        if failed is not None:
            delivery.stream_ready, delivery.undelivered, delivery.failure = False, events, failed
            return delivery
    pending = list(batches(events))
    for index, batch in enumerate(pending):
        try:
            response = _timed(delivery, lambda batch=batch: _put(target, batch))  # type: ignore[misc]
        except CallFailed as failed:
            delivery.undelivered = [event for later in pending[index:] for event in later]
            delivery.failure = failed
            return delivery
        delivery.rejected += rejected(batch, response.get("rejectedLogEventsInfo"))  # type: ignore[arg-type]
    return delivery


def _put(target: StreamTarget, batch: list[LogEvent]) -> PutLogEventsResponseTypeDef:
    """One batch; sent once more, marked, when the first put went unanswered (see the module's docstring)."""
    try:
        return call(lambda: target.put(batch), idempotent=False)
    except CallFailed as failed:
        if failed.failure is not Failure.AMBIGUOUS:
            raise
    return call(lambda: target.put([resent(event) for event in batch]), idempotent=False)


def resent(event: LogEvent) -> LogEvent:
    """``event`` marked ``"resent": true`` (unmarked if the mark would take it over the event size limit)."""
    text = event.message
    if len(text) < 3 or not text.endswith("}") or len(text) + len(_RESENT) > MAX_MESSAGE_BYTES:
        return event
    return LogEvent(event.timestamp, text[:-1] + _RESENT)


def _timed(delivery: Delivery, operation: Callable[[], T]) -> T:
    started = time.monotonic()
    try:
        return operation()
    finally:
        delivery.slowest_seconds = max(delivery.slowest_seconds, time.monotonic() - started)
