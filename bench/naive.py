"""The naive baseline: the same jobs, done the way a first version usually does them.

One message at a time, ``DeleteMessage`` per message, ``SendMessage`` per background job, one
``PutLogEvents`` per log line and no concurrency. It runs the real job handlers from
``background_job.jobs`` and prints the same EMF line per job as the real worker, so the harness
measures both the same way. Started by :mod:`bench.launch` as ``naive-triggers`` or ``naive-jobs``.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from background_job.api import JobContext
from background_job.jobs import REGISTRY
from common import metrics
from common.job_ids import job_id_for_message
from common.job_log.log import JobLog, OutageBreaker
from common.messages import BackgroundJob, parse_background_job, parse_trigger
from common.metrics import MetricsEmitter
from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE
from common.settings import Settings
from common.sqs.inbound import SYSTEM_ATTRIBUTES, InboundMessage
from common.sqs.shutdown import Shutdown, install_signal_handlers

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sqs import SQSClient

#: The baseline never trips a breaker: it has no outage handling, like most first versions.
_NEVER_OPEN = OutageBreaker()


class LinePerCallJobLog(JobLog):
    """A job log that ships every line as it is written: one PutLogEvents per line."""

    def __init__(self, *, logs: CloudWatchLogsClient, log_group: str, job_id: str, context: dict[str, Any]) -> None:
        super().__init__(
            logs=logs,
            log_group=log_group,
            job_id=job_id,
            context=context,
            on_delivery_failure=lambda _n: None,
            breaker=_NEVER_OPEN,
        )
        self._client = logs
        self._group = log_group
        self._fields = {"jobId": job_id, **context}

    def open(self) -> None:
        self._client.create_log_stream(logGroupName=self._group, logStreamName=self.stream_name)

    def close(self) -> None:
        return  # every line is already shipped

    def event(self, name: str, level: str = "info", **fields: Any) -> None:  # noqa: ANN401
        now = datetime.now(UTC)
        record = {**fields, **self._fields, "level": level, "message": name, "timestamp": now.isoformat()}
        self._client.put_log_events(
            logGroupName=self._group,
            logStreamName=self.stream_name,
            logEvents=[{"timestamp": int(now.timestamp() * 1000), "message": json.dumps(record)}],
        )


def _receive_one(sqs: SQSClient, queue_url: str, wait_seconds: int) -> InboundMessage | None:
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=1,
        WaitTimeSeconds=wait_seconds,
        MessageSystemAttributeNames=list(SYSTEM_ATTRIBUTES),
        MessageAttributeNames=["All"],
    )
    messages = response.get("Messages", [])
    return InboundMessage.from_sqs(messages[0]) if messages else None


def forward_trigger(sqs: SQSClient, settings: Settings, message: InboundMessage) -> None:
    """Validate one trigger, send its background job on its own, then delete it on its own."""
    trigger = parse_trigger(message.body)
    job = BackgroundJob(
        job_id=job_id_for_message(message.message_id, message.sent_timestamp_ms),
        job_type=trigger.job_type,
        correlation_id=trigger.correlation_id or str(uuid.uuid4()),
        trigger=trigger.raw,
        enqueued_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )
    sqs.send_message(
        QueueUrl=settings.background_queue_url, MessageBody=job.to_body(), MessageAttributes=job.message_attributes()
    )
    sqs.delete_message(QueueUrl=settings.trigger_queue_url, ReceiptHandle=message.receipt_handle)


def run_job(
    sqs: SQSClient, logs: CloudWatchLogsClient, settings: Settings, emitter: MetricsEmitter, message: InboundMessage
) -> None:
    """Run one job with its log shipped line by line, then delete its message on its own."""
    job = parse_background_job(message.body, message.attributes)
    job_log = LinePerCallJobLog(
        logs=logs, log_group=settings.job_log_group, job_id=job.job_id, context={"correlationId": job.correlation_id}
    )
    job_log.open()
    job_log.info("job.started")
    started = time.monotonic()
    REGISTRY[job.job_type](
        JobContext(
            job_id=job.job_id,
            job_type=job.job_type,
            correlation_id=job.correlation_id,
            attempt=message.receive_count,
            trigger=job.trigger,
            log=job_log,
            shutdown=Shutdown(),
        )
    )
    job_log.info("job.succeeded")
    duration_ms = round((time.monotonic() - started) * 1000)
    emitter.emit({metrics.JOBS_SUCCEEDED: 1, metrics.JOB_DURATION: duration_ms}, jobId=job.job_id)
    emitter.flush()  # the naive worker's line per job, which is also the bench's record of it
    sqs.delete_message(QueueUrl=settings.background_queue_url, ReceiptHandle=message.receipt_handle)


def main(role: str) -> int:
    """Loop over one message at a time until SIGTERM; ``role`` is ``naive-triggers`` or ``naive-jobs``."""
    service = MAIN_JOB_SERVICE if role == "naive-triggers" else BACKGROUND_JOB_SERVICE
    settings = Settings.from_env(service)
    shutdown = Shutdown()
    install_signal_handlers(shutdown)
    sqs = boto3.client("sqs")
    if role == "naive-triggers":
        while not shutdown.is_requested():
            message = _receive_one(sqs, settings.trigger_queue_url, settings.receive_wait_seconds)
            if message is not None:
                forward_trigger(sqs, settings, message)
        return 0
    logs = boto3.client("logs")
    emitter = MetricsEmitter(settings.metrics_namespace, BACKGROUND_JOB_SERVICE)
    while not shutdown.is_requested():
        message = _receive_one(sqs, settings.background_queue_url, settings.receive_wait_seconds)
        if message is not None:
            run_job(sqs, logs, settings, emitter, message)
    return 0
