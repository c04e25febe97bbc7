"""Finding the jobId main_job derived for a trigger, from the trigger's MessageId.

main_job derives the jobId from the MessageId *and* the message's SentTimestamp
(:func:`common.job_ids.job_id_for_message`). SendMessage returns the MessageId but not SentTimestamp,
and reading the message back would be a receive that main_job then sees as a redelivery. So the sender
knows exactly the last 16 characters of the jobId (a hash of the MessageId) and only a window for the
first 10 (the time). The full jobId is found, never guessed, in one of two places:

* the main-job log group: the ``trigger.received`` line carries both ``message_id`` and ``job_id``;
* the background-job log group: the job's stream ``job-streams/<date>/<jobId>`` is the only stream in
  the send window whose name ends with the known suffix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError
from ulid import ULID

from common.job_ids import is_valid_job_id, job_id_for_message
from common.names import JOB_STREAM_ROOT, FleetNames

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

#: Clocks disagree: widen the send window by this much on each side.
CLOCK_SKEW_MS: Final = 60_000
#: The first seven ULID characters change every 32**3 ms (about 33 s): one stream-name prefix per step.
_PREFIX_CHARS: Final = 7
_PREFIX_STEP_MS: Final = 32**3
_TIME_CHARS: Final = 10


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Local clock before and after SendMessage; SQS's SentTimestamp lies between them, give or take skew."""

    before_ms: int
    after_ms: int

    @property
    def start_ms(self) -> int:
        return max(0, self.before_ms - CLOCK_SKEW_MS)

    @property
    def end_ms(self) -> int:
        return self.after_ms + CLOCK_SKEW_MS


def job_id_suffix(message_id: str) -> str:
    """The part of the jobId fixed by the MessageId alone (the ULID's 16 random characters)."""
    return job_id_for_message(message_id, 0)[_TIME_CHARS:]


def find_job_id(
    logs: CloudWatchLogsClient, names: FleetNames, message_id: str, window: SendWindow
) -> tuple[str, str] | None:
    """The jobId and where it was found, or None if neither log shows it yet."""
    suffix = job_id_suffix(message_id)
    found = _from_main_job_log(logs, names.main_job_log_group, message_id, suffix, window)
    if found:
        return found, "main-job log"
    for prefix in _stream_prefixes(window):
        for name in _stream_names(logs, names.background_job_log_group, prefix):
            job_id = name.rsplit("/", 1)[-1]
            if job_id.endswith(suffix) and is_valid_job_id(job_id):
                return job_id, "job stream"
    return None


def wait_for_job_id(
    find: Callable[[], tuple[str, str] | None],
    *,
    timeout_seconds: float,
    poll_seconds: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> tuple[str, str] | None:
    """Call ``find`` until it answers or ``timeout_seconds`` pass."""
    deadline = clock() + timeout_seconds
    while True:
        found = find()
        if found or clock() >= deadline:
            return found
        sleep(min(poll_seconds, max(0.0, deadline - clock())))


def _from_main_job_log(
    logs: CloudWatchLogsClient, group: str, message_id: str, suffix: str, window: SendWindow
) -> str | None:
    kwargs = {"logGroupName": group, "startTime": window.start_ms, "filterPattern": f'"{message_id}"'}
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**kwargs):  # type: ignore[arg-type]
            for event in page.get("events", []):
                job_id = _job_id_of(event.get("message", ""), message_id)
                if job_id and job_id.endswith(suffix):
                    return job_id
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    return None


def _job_id_of(line: str, message_id: str) -> str | None:
    try:
        document = json.loads(line)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("message_id") != message_id:
        return None
    job_id = document.get("job_id")
    return job_id if is_valid_job_id(job_id) else None


def _stream_prefixes(window: SendWindow) -> list[str]:
    prefixes: dict[str, None] = {}
    moment = window.start_ms
    while True:
        clamped = min(moment, window.end_ms)
        day = datetime.fromtimestamp(clamped / 1000, tz=UTC)
        time_part = str(ULID.from_timestamp(int(clamped)))[:_PREFIX_CHARS]  # an int is milliseconds
        prefixes[f"{JOB_STREAM_ROOT}/{day:%Y-%m-%d}/{time_part}"] = None
        if clamped >= window.end_ms:
            return list(prefixes)
        moment += _PREFIX_STEP_MS


def _stream_names(logs: CloudWatchLogsClient, group: str, prefix: str) -> Iterator[str]:
    try:
        pages = logs.get_paginator("describe_log_streams").paginate(logGroupName=group, logStreamNamePrefix=prefix)
        for page in pages:
            for stream in page.get("logStreams", []):
                yield stream.get("logStreamName", "")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
