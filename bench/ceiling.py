"""The emulator's ceiling: the fleet's minimal per-job API sequence, replayed with no worker logic.

Per ten jobs the fleet cannot do with fewer than: ReceiveMessage, SendMessageBatch and
DeleteMessageBatch on the trigger queue; ReceiveMessage and DeleteMessageBatch on the background
queue; and per job one CreateLogStream and one PutLogEvents. This module issues exactly that, ten
jobs at a time, with the same shape as the fleet (two processes; the log calls on
``WORKER_CONCURRENCY`` threads; deletes on a thread of their own, as the fleet's settler does them),
and no validation, dispatch, structured logging or watchtower. What it reaches is what the emulator
serves for the minimal request sequence on this machine, so the fleet's throughput is reported as a
share of it. (A fleet that spends more requests to keep its slots busier can beat it: see the batch
window in docs/performance.md.)
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from common import metrics
from common.job_ids import job_id_for_message
from common.job_log.log import job_stream_name
from common.metrics import MetricsEmitter
from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE
from common.settings import Settings
from common.sqs.shutdown import Shutdown, install_signal_handlers

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sqs import SQSClient

#: As many events as the no-op job writes (started, two steps, succeeded), in one PutLogEvents.
EVENTS_PER_JOB = 4


def _receive(sqs: SQSClient, queue_url: str, wait_seconds: int) -> list[dict[str, Any]]:
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait_seconds,
        MessageSystemAttributeNames=["SentTimestamp"],
    )
    return [dict(message) for message in response.get("Messages", [])]


def _delete_batch(sqs: SQSClient, queue_url: str, messages: list[dict[str, Any]]) -> None:
    sqs.delete_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
    )


def forward_batch(sqs: SQSClient, deleter: Executor, settings: Settings, messages: list[dict[str, Any]]) -> None:
    """One SendMessageBatch, then one DeleteMessageBatch on the deleter thread, for up to ten triggers."""
    entries = []
    for index, message in enumerate(messages):
        sent_ms = int(message["Attributes"]["SentTimestamp"])
        job_id = job_id_for_message(message["MessageId"], sent_ms)
        entries.append({"Id": str(index), "MessageBody": json.dumps({"jobId": job_id})})
    sqs.send_message_batch(QueueUrl=settings.background_queue_url, Entries=entries)  # type: ignore[arg-type]
    deleter.submit(_delete_batch, sqs, settings.trigger_queue_url, messages)


def _log_job(logs: CloudWatchLogsClient, log_group: str, job_id: str) -> None:
    stream = job_stream_name(job_id)
    logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": f'{{"jobId":"{job_id}","n":{n}}}'} for n in range(EVENTS_PER_JOB)]
    logs.put_log_events(logGroupName=log_group, logStreamName=stream, logEvents=events)  # type: ignore[arg-type]


def finish_batch(
    sqs: SQSClient,
    logs: CloudWatchLogsClient,
    pool: Executor,
    deleter: Executor,
    *,
    settings: Settings,
    messages: list[dict[str, Any]],
) -> list[str]:
    """Each job's two log calls on the pool, then one DeleteMessageBatch on the deleter; returns the job IDs."""
    job_ids = [json.loads(message["Body"])["jobId"] for message in messages]
    list(pool.map(lambda job_id: _log_job(logs, settings.job_log_group, job_id), job_ids))
    deleter.submit(_delete_batch, sqs, settings.background_queue_url, messages)
    return job_ids


def main(role: str) -> int:
    """Replay until SIGTERM; ``role`` is ``ceiling-triggers`` or ``ceiling-jobs``."""
    service = MAIN_JOB_SERVICE if role == "ceiling-triggers" else BACKGROUND_JOB_SERVICE
    settings = Settings.from_env(service)
    shutdown = Shutdown()
    install_signal_handlers(shutdown)
    config = Config(max_pool_connections=settings.concurrency + 4)
    sqs = boto3.client("sqs", config=config)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deleter") as deleter:
        if role == "ceiling-triggers":
            _forward_until_shutdown(sqs, deleter, settings, shutdown)
        else:
            _finish_until_shutdown(sqs, deleter, settings, shutdown)
    return 0


def _forward_until_shutdown(sqs: SQSClient, deleter: Executor, settings: Settings, shutdown: Shutdown) -> None:
    while not shutdown.is_requested():
        messages = _receive(sqs, settings.trigger_queue_url, settings.receive_wait_seconds)
        if messages:
            forward_batch(sqs, deleter, settings, messages)


def _finish_until_shutdown(sqs: SQSClient, deleter: Executor, settings: Settings, shutdown: Shutdown) -> None:
    logs = boto3.client("logs", config=Config(max_pool_connections=settings.concurrency + 4))
    emitter = MetricsEmitter(settings.metrics_namespace, BACKGROUND_JOB_SERVICE)
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        while not shutdown.is_requested():
            messages = _receive(sqs, settings.background_queue_url, settings.receive_wait_seconds)
            if not messages:
                continue
            for job_id in finish_batch(sqs, logs, pool, deleter, settings=settings, messages=messages):
                emitter.emit({metrics.JOBS_SUCCEEDED: 1}, jobId=job_id)
                emitter.flush()  # a line per job: the bench's record of it
