"""One job's timeline: main-job events and the job's own stream, merged oldest first, and its status.

* Main-job events are found in the main-job log group with a quoted-term filter on the jobId (a JSON
  filter would be tighter, but the term works on AWS and the emulator alike) and then checked exactly
  against the ``job_id`` field. The search starts shortly before the time in the jobId (the trigger's
  SentTimestamp), so it never scans older history.
* The job's stream ``job-streams/<date>/<jobId>`` is read from the head, following nextForwardToken
  until it stops changing, which is how GetLogEvents marks the end.

* The background-job service's own lines (not the job streams) that carry this ``job_id``, found the
  same way: a job quarantined by background_job (``message.quarantined``) is dead, with the reason.

A job-stream line that is not JSON (older streams; a writer cut an oversized event short) is shown as
raw text, and an event the job log summarised because it was too large (``"truncated": true`` with
``originalBytes``) is shown with a marker: neither is dropped.

Status, in the ledger's words: dead after a quarantine, or when the last ``job.failed`` will not be
retried; succeeded after a ``job.succeeded``; cancelled after a ``job.cancelled`` (deleted unrun, or
stopped on an operator's cancel); retrying when the last ``job.failed`` has no ``job.started`` after it;
running once a ``job.started`` is seen; queued while only main-job events exist. Attempts count the
``job.started`` events; the duration is the successful run's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from common.job_ids import job_timestamp
from common.job_log.log import job_stream_name
from common.ledger.schema import JobStatus
from common.names import JOB_STREAM_ROOT, FleetNames
from fleet.cli.render import duration, from_millis, timestamp

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

MAIN_JOB: Final = "main-job"
BACKGROUND: Final = "bg-job"
JOB: Final = "job"
#: Shown as the event name of a job-stream line that is not a JSON event.
RAW_EVENT: Final = "(not JSON)"
#: Service lines that mean the job was parked in its DLQ for good.
DEAD_EVENTS: Final = frozenset({"message.quarantined", "message.dead_lettered", "job.dead"})
#: Main-job lines are written after SentTimestamp; a little slack covers clock differences.
_SEARCH_SLACK: Final = timedelta(minutes=5)
#: The job states, named as the ledger names them (common/ledger/schema.py): one vocabulary (issue 34).
TERMINAL: Final = frozenset({JobStatus.SUCCEEDED.value, JobStatus.DEAD.value, JobStatus.CANCELLED.value})
#: main_job's lines about a job that come before any of its runs, whatever their timestamps say (the two
#: services' clocks may differ): ``trigger.received``, and ``background_job.queued``, which releases before
#: 2026-12-04 logged after SendMessageBatch returned, so a fast worker's ``job.started`` could precede it.
#: The timeline is in event order, so these never sort after the job's own events.
_BEFORE_THE_JOB: Final = frozenset({"trigger.received", "background_job.queued"})
#: Fields every line carries; the timeline shows the rest.
_COMMON_FIELDS: Final = frozenset(
    {
        "event",
        "message",
        "job_id",
        "jobId",
        "correlation_id",
        "correlationId",
        "level",
        "timestamp",
        "service",
        "jobType",
        "job_type",
        "logger",
    }
)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One event from either source; ``key`` identifies it across repeated reads."""

    at: datetime
    source: str
    name: str
    fields: Mapping[str, Any]
    key: tuple[str, ...] = field(compare=False)

    def details(self) -> str:
        parts = []
        for name, value in self.fields.items():
            if name in _COMMON_FIELDS:
                continue
            text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            parts.append(f"{name}={text}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class JobSummary:
    job_id: str
    status: str
    attempts: int
    job_type: str
    correlation_id: str
    ended_at: datetime | None
    last_error: str

    @property
    def sent_at(self) -> datetime:
        return job_timestamp(self.job_id)

    #: The run time of the attempt that succeeded (job.succeeded's duration_ms), as the ledger's
    #: durationMs: "duration" means the same with and without the ledger (issue 34).
    duration_ms: float | None = None


def main_job_events(logs: CloudWatchLogsClient, group: str, job_id: str, source: str = MAIN_JOB) -> list[TimelineEvent]:
    """The service lines whose ``job_id`` is this job (not the job streams); none if the group is missing."""
    start = int((job_timestamp(job_id) - _SEARCH_SLACK).timestamp() * 1000)
    events: list[TimelineEvent] = []
    try:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, startTime=start, filterPattern=f'"{job_id}"'
        )
        for page in pages:
            for raw in page.get("events", []):
                if raw.get("logStreamName", "").startswith(f"{JOB_STREAM_ROOT}/"):
                    continue
                event = parse_event(raw.get("message", ""), raw.get("timestamp"), source, "event")
                if event is not None and event.fields.get("job_id") == job_id:
                    events.append(with_key(event, raw.get("logStreamName", ""), raw.get("eventId", "")))
    except ClientError as error:
        if not _not_found(error):
            raise
    return events


def job_stream_events(logs: CloudWatchLogsClient, group: str, job_id: str) -> list[TimelineEvent]:
    """Every event in the job's own stream; none if the stream does not exist (yet)."""
    stream = job_stream_name(job_id)
    events: list[TimelineEvent] = []
    token: str | None = None
    try:
        while True:
            kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            page = logs.get_log_events(**kwargs)
            for raw in page.get("events", []):
                line = raw.get("message", "")
                event = parse_event(line, raw.get("timestamp"), JOB, "message") or raw_event(line, raw.get("timestamp"))
                if event is not None:
                    key = (
                        stream,
                        str(raw.get("timestamp")),
                        str(raw.get("ingestionTime")),
                        raw.get("message", ""),
                    )
                    events.append(with_key(event, *key))
            following = page.get("nextForwardToken")
            if not following or following == token or not page.get("events"):
                return events
            token = following
    except ClientError as error:
        if not _not_found(error):
            raise
    return events


def merge(*sources: Iterable[TimelineEvent]) -> list[TimelineEvent]:
    """In event order: by time, except that main_job's trigger.received (and an older release's
    background_job.queued) never come after the job's first own event; at the same instant main-job comes
    first, then read order."""
    combined = [event for source in sources for event in source]
    job_times = [event.at for event in combined if event.source == JOB]
    first_run = min(job_times) if job_times else None

    def order(event: TimelineEvent) -> tuple[datetime, bool]:
        at = event.at
        if first_run is not None and event.source == MAIN_JOB and event.name in _BEFORE_THE_JOB:
            at = min(at, first_run)
        return at, event.source != MAIN_JOB

    return sorted(combined, key=order)


def summarize(job_id: str, events: Sequence[TimelineEvent]) -> JobSummary:
    names = [event.name for event in events]
    failures = [event for event in events if event.name == "job.failed"]
    attempts = names.count("job.started")
    terminal: TimelineEvent | None = None
    dead = [event for event in events if event.name in DEAD_EVENTS]
    if dead:
        status = "dead"
        terminal = dead[-1]
    elif "job.succeeded" in names:
        status = "succeeded"
        terminal = next(event for event in events if event.name == "job.succeeded")
    elif "job.cancelled" in names:
        status = "cancelled"
        terminal = next(event for event in events if event.name == "job.cancelled")
    elif "trigger.completed" in names and attempts == 0:
        status = "succeeded"  # triggerBackgroundJob false: main_job did all there was to do
        terminal = next(event for event in events if event.name == "trigger.completed")
    elif failures and failures[-1].fields.get("will_retry") is False:
        status = JobStatus.DEAD.value  # its last attempt failed: the message goes to the DLQ
        terminal = failures[-1]
    elif failures and _last_index(names, "job.failed") > _last_index(names, "job.started"):
        status = JobStatus.RETRYING.value  # an attempt failed and its retry has not started yet
    elif attempts:
        status = JobStatus.RUNNING.value
    else:
        status = JobStatus.QUEUED.value
    return JobSummary(
        job_id=job_id,
        status=status,
        attempts=attempts,
        job_type=_first_field(events, "jobType", "job_type"),
        correlation_id=_first_field(events, "correlationId", "correlation_id"),
        ended_at=terminal.at if terminal else None,
        last_error=_last_error(dead, failures),
        duration_ms=_run_duration(terminal) if status == JobStatus.SUCCEEDED.value else None,
    )


def _last_index(names: Sequence[str], name: str) -> int:
    return max((index for index, found in enumerate(names) if found == name), default=-1)


def _run_duration(terminal: TimelineEvent | None) -> float | None:
    value = terminal.fields.get("duration_ms") if terminal is not None else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _last_error(dead: Sequence[TimelineEvent], failures: Sequence[TimelineEvent]) -> str:
    if dead:
        return str(dead[-1].fields.get("reason", ""))
    return str(failures[-1].fields.get("error", "")) if failures else ""


def render_summary(summary: JobSummary) -> str:
    lines = [
        f"job          {summary.job_id}",
        f"status       {summary.status}",
        f"attempts     {summary.attempts}",
        f"type         {summary.job_type or '-'}",
        f"correlation  {summary.correlation_id or '-'}",
        f"sent         {timestamp(summary.sent_at)}",
        f"duration     {duration(summary.duration_ms)}",
    ]
    if summary.last_error:
        lines.append(f"last error   {summary.last_error}")
    return "\n".join(lines) + "\n"


def render_event(event: TimelineEvent) -> str:
    details = event.details()
    if event.fields.get("truncated") is True:
        details = f"[truncated: {event.fields.get('originalBytes', '?')} bytes originally] {details}"
    return f"{timestamp(event.at)}  {event.source:<8}  {event.name:<24}  {details}".rstrip() + "\n"


def raw_event(line: str, fallback_ms: int | None) -> TimelineEvent | None:
    """A job-stream line that is no JSON event, kept as its text so that no step is silently dropped."""
    at = from_millis(fallback_ms)
    if at is None or not line.strip():
        return None
    return TimelineEvent(at=at, source=JOB, name=RAW_EVENT, fields={"raw": line}, key=())


def parse_event(line: str, fallback_ms: int | None, source: str, name_field: str) -> TimelineEvent | None:
    try:
        document = json.loads(line)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get(name_field), str):
        return None
    at = _parse_time(document.get("timestamp")) or from_millis(fallback_ms)
    if at is None:
        return None
    return TimelineEvent(at=at, source=source, name=document[name_field], fields=document, key=())


def with_key(event: TimelineEvent, *parts: str) -> TimelineEvent:
    return TimelineEvent(at=event.at, source=event.source, name=event.name, fields=event.fields, key=parts)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _first_field(events: Sequence[TimelineEvent], *names: str) -> str:
    for event in events:
        for name in names:
            value = event.fields.get(name)
            if isinstance(value, str) and value:
                return value
    return ""


def _not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


@dataclass(frozen=True, slots=True)
class Timeline:
    summary: JobSummary
    events: list[TimelineEvent]


def read(logs: CloudWatchLogsClient, names: FleetNames, job_id: str) -> Timeline:
    """Both sources, merged, with the status they add up to."""
    events = merge(
        main_job_events(logs, names.main_job_log_group, job_id),
        main_job_events(logs, names.background_job_log_group, job_id, BACKGROUND),
        job_stream_events(logs, names.background_job_log_group, job_id),
    )
    return Timeline(summarize(job_id, events), events)


def _show_new_progress(
    progress: Callable[[], str | None] | None, last: str | None, write: Callable[[str], object]
) -> str | None:
    """Print the job's progress as a line of its own when it changed; return the latest shown."""
    now = progress() if progress is not None else None
    if now is None or now == last:
        return last
    write(f"{'':<24}  {'ledger':<8}  {'progress':<24}  {now}\n")
    return now


def follow(
    logs: CloudWatchLogsClient,
    names: FleetNames,
    job_id: str,
    *,
    write: Callable[[str], object],
    sleep: Callable[[float], None],
    poll_seconds: float,
    note: Callable[[str], object] = lambda _text: None,
    first_event_timeout: float = 60.0,
    progress: Callable[[], str | None] | None = None,
) -> JobSummary | None:
    """Print events as they appear until the job ends for good; return its summary.

    A job with no events at all may not exist (a mistyped ID) or not be queued yet: say so once, with
    how long this waits, and return None if nothing shows up by then instead of polling forever.
    ``progress``, when given, reads the job's latest progress (from the ledger); each new value is
    printed as a ``progress`` line, between the events.
    """
    shown: set[tuple[str, ...]] = set()
    waited = 0.0
    last_progress: str | None = None
    while True:
        timeline = read(logs, names, job_id)
        if not timeline.events and not shown:
            if waited >= first_event_timeout:
                return None
            if waited == 0:
                note(f"no events for job {job_id} yet: waiting up to {first_event_timeout:g}s for them (Ctrl-C stops)")
        for event in timeline.events:
            if event.key not in shown:
                shown.add(event.key)
                write(render_event(event))
        last_progress = _show_new_progress(progress, last_progress, write)
        if timeline.summary.status in TERMINAL:
            return timeline.summary
        sleep(poll_seconds)
        waited += poll_seconds
