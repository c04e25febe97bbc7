"""Assembles the background_job consumer: the background queue, a bounded pool, per-job log streams."""

from __future__ import annotations

from typing import TYPE_CHECKING

from background_job.jobs import REGISTRY
from background_job.runner import JobRunner
from common import aws
from common.consumer import Consumer
from common.dispatch import PoolDispatcher
from common.metrics import MetricsEmitter
from common.names import BACKGROUND_JOB_SERVICE
from common.settings import Settings
from common.shutdown import Shutdown
from common.worker import build_consumer

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sqs import SQSClient


def build(
    settings: Settings,
    shutdown: Shutdown,
    sqs: SQSClient | None = None,
    logs: CloudWatchLogsClient | None = None,
) -> Consumer:
    # One pooled connection per job thread, plus the loop (which settles) and the heartbeat.
    pool_size = settings.concurrency + 4
    sqs_client = sqs or aws.sqs_client(pool_size)
    runner = JobRunner(
        registry=REGISTRY,
        logs=logs or aws.logs_client(pool_size),
        log_group=settings.job_log_group,
        metrics_emitter=MetricsEmitter(settings.metrics_namespace, BACKGROUND_JOB_SERVICE),
        max_receive_count=settings.max_receive_count,
        shutdown=shutdown,
        logs_outage_cooldown_seconds=settings.logs_outage_cooldown_seconds,
    )
    return build_consumer(
        settings=settings,
        sqs=sqs_client,
        queue_url=settings.background_queue_url,
        dlq_url=settings.background_dlq_url,
        shutdown=shutdown,
        make_dispatcher=lambda: PoolDispatcher(runner, settings.concurrency, settings.batch_window_seconds),
    )
