"""``fleet jobs``: recent jobs, from the job ledger's day indexes, else from the job streams.

With the ledger (fleet/cli/ledger.py) a listing is one Query per UTC day of the window on ``by-day``
(jobs queued since) or on ``failures`` (``--failed``: jobs that died since), then BatchGetItem for the
listed items. Without it, the per-job streams of the background-job log group are read as follows.

Streams are listed day by day with DescribeLogStreams (``job-streams/<date>/`` prefixes), following
``nextToken`` through every page of 50. A job is recent when the time in its jobId (its trigger's
SentTimestamp) is inside the window; a stream's lastEventTimestamp is not used, because CloudWatch
updates it only eventually. The streams' events are then read with FilterLogEvents, up to 100 named
streams per call, again following ``nextToken`` to the end.

Jobs that main_job has queued but no worker has started yet have no stream, so they do not appear
here; ``fleet job JOB_ID`` shows them as queued.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from common.job_ids import is_valid_job_id, job_timestamp
from common.ledger.schema import JobStatus
from common.names import JOB_STREAM_ROOT
from fleet.cli.errors import OpsError
from fleet.cli.ledger import LedgerJob
from fleet.cli.render import duration, table, timestamp
from fleet.cli.timeline import JOB, JobSummary, TimelineEvent, merge, parse_event, summarize, with_key

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

#: FilterLogEvents accepts at most 100 stream names per call.
STREAMS_PER_FILTER: Final = 100
_EVENT_SLACK: Final = timedelta(minutes=5)


def job_stream_names(logs: CloudWatchLogsClient, group: str, *, since: datetime, now: datetime) -> list[str]:
    """Every job stream whose jobId time is at or after ``since``, oldest first."""
    names: list[str] = []
    day = since.date()
    while day <= now.date():
        for name in _streams_with_prefix(logs, group, f"{JOB_STREAM_ROOT}/{day:%Y-%m-%d}/"):
            job_id = name.rsplit("/", 1)[-1]
            if is_valid_job_id(job_id) and job_timestamp(job_id) >= since:
                names.append(name)
        day += timedelta(days=1)
    return names


def recent_jobs(logs: CloudWatchLogsClient, group: str, *, since: datetime, now: datetime) -> list[JobSummary]:
    """A summary of every recent job, newest first."""
    streams = job_stream_names(logs, group, since=since, now=now)
    events = _events_by_stream(logs, group, streams, start=since - _EVENT_SLACK)
    summaries = [summarize(name.rsplit("/", 1)[-1], merge(events.get(name, []))) for name in streams]
    return sorted(summaries, key=lambda summary: summary.job_id, reverse=True)


def parse_since(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``2d`` as a timedelta."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise OpsError(f"--since {text!r}: expected a positive number and a unit s, m, h or d (e.g. 1h)")
    return timedelta(**{units[unit]: int(number)})


def render(summaries: Sequence[JobSummary]) -> str:
    if not summaries:
        return "no jobs in this window\n"
    rows = [
        [
            s.job_id,
            s.job_type or "-",
            s.status,
            str(s.attempts),
            duration(s.duration_ms),
            timestamp(s.sent_at),
        ]
        for s in summaries
    ]
    return table(["JOB ID", "TYPE", "STATUS", "ATTEMPTS", "DURATION", "SENT"], rows, right=frozenset({3, 4}))


def render_ledger(listed: Sequence[LedgerJob]) -> str:
    if not listed:
        return "no jobs in this window\n"
    rows = [
        [j.job_id, j.job_type or "-", j.status, str(j.attempts), duration(j.duration_ms), j.updated_at or "-"]
        for j in listed
    ]
    return table(["JOB ID", "TYPE", "STATUS", "ATTEMPTS", "DURATION", "UPDATED"], rows, right=frozenset({3, 4}))


def ledger_to_json(listed: Sequence[LedgerJob]) -> str:
    return json.dumps([job.view() for job in listed], indent=2) + "\n"


def render_ledger_job(job: LedgerJob) -> str:
    """``fleet job``'s summary from the ledger item: only the fields that describe its current state.

    A redriven job keeps its old deadReason and a finished one its last lease in the item; shown next to
    ``running`` or ``succeeded`` they would contradict the status, so they are shown only where they apply.
    """
    lines = [
        f"job          {job.job_id}",
        f"status       {job.status}",
        f"attempts     {job.attempts}  (runs started, redrives included)",
        f"type         {job.job_type or '-'}",
        f"correlation  {job.correlation_id or '-'}",
        f"worker       {job.worker_id or '-'}",
    ]
    if job.status == JobStatus.RUNNING.value and job.lease_until:
        lines.append(f"lease until  {timestamp(job.lease_until)}")
    lines += [
        f"sent         {timestamp(job_timestamp(job.job_id))}",
        f"duration     {duration(job.duration_ms if job.status == JobStatus.SUCCEEDED.value else None)}",
    ]
    if job.result and job.status == JobStatus.SUCCEEDED.value:
        lines.append(f"result       {job.result}")
    if job.last_error and job.status != JobStatus.SUCCEEDED.value:
        lines.append(f"last error   {job.last_error}")
    if job.dead_reason and job.status == JobStatus.DEAD.value:
        lines.append(f"dead reason  {job.dead_reason}")
    if job.progress is not None:
        lines.append(f"progress     {job.progress_text()}  (at {job.progress_at or '-'})")
    if job.cancel_requested_at:
        reason = f": {job.cancel_reason}" if job.cancel_reason else ""
        lines.append(f"cancelled    at {job.cancel_requested_at} by {job.cancelled_by or '-'}{reason}")
    lines.append("source       job ledger, timeline from the logs")
    return "\n".join(lines) + "\n"


def to_json(summaries: Sequence[JobSummary]) -> str:
    document = [
        {**asdict(s), "ended_at": timestamp(s.ended_at) if s.ended_at else None, "duration_ms": s.duration_ms}
        for s in summaries
    ]
    return json.dumps(document, indent=2) + "\n"


def _streams_with_prefix(logs: CloudWatchLogsClient, group: str, prefix: str) -> Iterator[str]:
    token: str | None = None
    while True:
        kwargs = {"logGroupName": group, "logStreamNamePrefix": prefix, "orderBy": "LogStreamName"}
        if token:
            kwargs["nextToken"] = token
        try:
            page = logs.describe_log_streams(**kwargs)  # type: ignore[arg-type]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise OpsError(f"log group {group} does not exist") from None
            raise
        for stream in page.get("logStreams", []):
            yield stream.get("logStreamName", "")
        following = page.get("nextToken")
        if not following or following == token:
            return
        token = following


def _events_by_stream(
    logs: CloudWatchLogsClient, group: str, streams: Sequence[str], *, start: datetime
) -> dict[str, list[TimelineEvent]]:
    found: dict[str, list[TimelineEvent]] = defaultdict(list)
    paginator = logs.get_paginator("filter_log_events")
    for first in range(0, len(streams), STREAMS_PER_FILTER):
        chunk = list(streams[first : first + STREAMS_PER_FILTER])
        pages = paginator.paginate(logGroupName=group, logStreamNames=chunk, startTime=int(start.timestamp() * 1000))
        for page in pages:
            for raw in page.get("events", []):
                event = parse_event(raw.get("message", ""), raw.get("timestamp"), JOB, "message")
                stream = raw.get("logStreamName", "")
                if event is not None and stream in chunk:
                    found[stream].append(with_key(event, stream, raw.get("eventId", "")))
    return found
