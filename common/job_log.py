"""Per-job CloudWatch log streams: ``job-streams/YYYY-MM-DD/<jobId>`` in the background-job log group.

watchtower ships the events, but it keeps one thread and one queue per stream name for the life of
the handler. We therefore open a handler per job and close it when the job ends, which keeps threads
bounded by concurrency. The stream is created up front (not on a failed put), so a short job costs
exactly two calls: CreateLogStream and one PutLogEvents at close.

A CloudWatch Logs outage must never lose or block a job: undelivered events go to stdout (the
container stream) with a warning, and the delivery-failure metric counts them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

import watchtower
from botocore.exceptions import BotoCoreError, ClientError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from common.job_ids import job_timestamp, require_job_id
from common.logging import get_logger
from common.names import JOB_STREAM_ROOT
from common.settings import DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef

log = get_logger(__name__)
#: A job that runs longer than this ships what it has so far; short jobs ship once, at close. It bounds
#: what a worker killed mid-job (OOM, SIGKILL) loses from the attempt's stream, so keep it short: at 30 s
#: a job killed in its first half-minute left no trace of that attempt (found by the reliability suite).
SEND_INTERVAL_SECONDS: Final = 5
_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

DeliveryFailureCallback = Callable[[int], None]


class OutageBreaker:
    """Shared by all jobs of a process: while Logs is failing, go straight to stdout.

    Without it every job in an outage would spend several seconds in botocore retries before falling
    back, and throughput would collapse. After the cooldown the next job probes Logs again, so delivery
    resumes on its own when the service is back.
    """

    def __init__(self, cooldown_seconds: float = DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS) -> None:
        self._cooldown = cooldown_seconds
        self._open_until = 0.0
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        with self._lock:
            return time.monotonic() < self._open_until

    def trip(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self._cooldown


def job_stream_name(job_id: str) -> str:
    """The stream name; the date is the ULID's, so a retry on another day lands in the same stream."""
    checked = require_job_id(job_id)  # a stream name may not contain ':' or '*': only a ULID gets here
    return f"{JOB_STREAM_ROOT}/{job_timestamp(checked):%Y-%m-%d}/{checked}"


def _is_throttling(error: BaseException) -> bool:
    return isinstance(error, ClientError) and error.response["Error"].get("Code") in {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
    }


class _StreamHandler(watchtower.CloudWatchLogHandler):
    """watchtower for one pre-created stream, reporting failed puts instead of only warning.

    The stock ``_submit_batch`` retries and then drops the batch with a Python warning. Here botocore's
    standard retry mode does the retrying, and a batch that still fails is handed to ``on_failure``.
    """

    def __init__(
        self,
        *,
        logs: CloudWatchLogsClient,
        on_failure: Callable[[list[dict[str, Any]], str], None],
        **kwargs: Any,  # noqa: ANN401
    ) -> None:
        super().__init__(boto3_client=logs, create_log_group=False, create_log_stream=False, **kwargs)
        self._logs = logs
        self._on_failure = on_failure

    def _submit_batch(self, batch: list[dict[str, Any]], log_stream_name: str, max_retries: int = 1) -> None:
        if not batch:
            return
        events: list[InputLogEventTypeDef] = sorted(batch, key=itemgetter("timestamp"))  # type: ignore[arg-type]
        try:
            response = self._logs.put_log_events(
                logGroupName=self.log_group_name, logStreamName=log_stream_name, logEvents=events
            )
        except (BotoCoreError, ClientError) as error:
            self._on_failure(batch, f"{type(error).__name__}: {error}")
            return
        if "rejectedLogEventsInfo" in response:
            self._on_failure(batch, f"rejected: {response['rejectedLogEventsInfo']}")


class JobLog:
    """The log of one job. Use as a context manager around the job's execution."""

    def __init__(
        self,
        *,
        logs: CloudWatchLogsClient,
        log_group: str,
        job_id: str,
        context: Mapping[str, Any],
        on_delivery_failure: DeliveryFailureCallback,
        breaker: OutageBreaker,
    ) -> None:
        self.stream_name = job_stream_name(job_id)
        self._logs = logs
        self._log_group = log_group
        self._context = {"jobId": job_id, **context}
        self._on_delivery_failure = on_delivery_failure
        self._breaker = breaker
        self._handler: _StreamHandler | None = None

    def __enter__(self) -> JobLog:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._breaker.is_open():
            log.warning("job_log.unavailable", stream=self.stream_name, error="recent outage", fallback="stdout")
            self._on_delivery_failure(1)
            return
        try:
            self._create_stream()
        except (BotoCoreError, ClientError) as error:
            self._breaker.trip()
            log.warning("job_log.unavailable", stream=self.stream_name, error=str(error), fallback="stdout")
            self._on_delivery_failure(1)
            return
        self._handler = _StreamHandler(
            log_group_name=self._log_group,
            log_stream_name=self.stream_name,
            logs=self._logs,
            send_interval=SEND_INTERVAL_SECONDS,
            on_failure=self._delivery_failed,
        )

    def close(self) -> None:
        handler, self._handler = self._handler, None
        if handler is None:
            return
        handler.close()  # type: ignore[no-untyped-call]
        for thread in handler.threads:
            thread.join(timeout=handler.FLUSH_TIMEOUT)

    def event(self, name: str, level: str = "info", **fields: Any) -> None:  # noqa: ANN401
        """Record ``name`` (a stable event name such as ``job.started``) with JSON-safe ``fields``."""
        record = {
            **fields,
            **self._context,
            "level": level,
            "message": name,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        if self._handler is None:
            log.warning("job_log.undelivered", job_event=record)
            return
        self._handler.handle(
            logging.makeLogRecord(
                {
                    "name": "job",
                    "msg": record,
                    "levelname": level.upper(),
                    "levelno": _LEVELS.get(level, logging.INFO),
                }
            )
        )

    def info(self, name: str, **fields: Any) -> None:  # noqa: ANN401
        self.event(name, "info", **fields)

    def warning(self, name: str, **fields: Any) -> None:  # noqa: ANN401
        self.event(name, "warning", **fields)

    def error(self, name: str, **fields: Any) -> None:  # noqa: ANN401
        self.event(name, "error", **fields)

    @retry(
        retry=retry_if_exception(_is_throttling),
        wait=wait_random_exponential(multiplier=0.2, max=5),
        stop=stop_after_attempt(6),
        reraise=True,
    )
    def _create_stream(self) -> None:
        try:
            self._logs.create_log_stream(logGroupName=self._log_group, logStreamName=self.stream_name)
        except ClientError as error:
            if error.response["Error"].get("Code") != "ResourceAlreadyExistsException":
                raise  # already there means a retry of this job: keep writing to the same stream

    def _delivery_failed(self, events: list[dict[str, Any]], error: str) -> None:
        self._breaker.trip()
        log.warning("job_log.delivery_failed", stream=self.stream_name, error=error, events=len(events))
        for event in events:
            log.warning("job_log.undelivered", job_event=event["message"])
        self._on_delivery_failure(1)
