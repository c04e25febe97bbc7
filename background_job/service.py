"""Assembles the background_job consumer: the background queue, a bounded pool, per-job log streams."""

from __future__ import annotations

from typing import TYPE_CHECKING

from background_job.jobs import REGISTRY
from background_job.runner import JobRunner
from background_job.time_limits import time_limits
from common import aws
from common.ledger.client import JobLedger
from common.ledger.gate import LedgerGate
from common.metrics import MetricsEmitter
from common.names import BACKGROUND_JOB_SERVICE
from common.settings import Settings
from common.sqs.consumer import Consumer
from common.sqs.dispatch import PoolDispatcher
from common.sqs.hooks import DeliveryHooks
from common.sqs.shutdown import Shutdown
from common.sqs.time_limit import Fitness
from common.worker import build_consumer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sqs import SQSClient


def build(
    settings: Settings,
    shutdown: Shutdown,
    sqs: SQSClient | None = None,
    logs: CloudWatchLogsClient | None = None,
    dynamodb: DynamoDBClient | None = None,
) -> Consumer:
    # One pooled connection per job thread, plus the loop (which settles) and the heartbeat.
    pool_size = settings.concurrency + 4
    sqs_client = sqs or aws.sqs_client(pool_size)
    metrics_emitter = MetricsEmitter(settings.metrics_namespace, BACKGROUND_JOB_SERVICE)
    runner = JobRunner(
        registry=REGISTRY,
        logs=logs or aws.logs_client(pool_size),
        log_group=settings.job_log_group,
        metrics_emitter=metrics_emitter,
        # Its events' will_retry / max_attempts: the give-up comes at MAX_ATTEMPTS runs (or the backstop).
        max_attempts=settings.max_attempts,
        max_receive_count=settings.max_receive_count,
        shutdown=shutdown,
        logs_outage_cooldown_seconds=settings.logs_outage_cooldown_seconds,
        time_limits=time_limits(REGISTRY, settings),
    )
    fitness = Fitness(
        min_live_share=settings.min_live_slots_share,
        hung_exit_seconds=settings.hung_slot_exit_seconds,
        hung_unhealthy_seconds=settings.hung_slot_unhealthy_seconds,
    )
    return build_consumer(
        settings=settings,
        sqs=sqs_client,
        queue_url=settings.background_queue_url,
        dlq_url=settings.background_dlq_url,
        shutdown=shutdown,
        hooks=_ledger_gate(settings, metrics_emitter, dynamodb, pool_size, runner),
        make_dispatcher=lambda: PoolDispatcher(
            runner,
            settings.concurrency,
            settings.batch_window_seconds,
            time_limit_seconds=settings.job_timeout_seconds,
            on_timeout=runner.timed_out,
            fitness=fitness,
        ),
    )


def _ledger_gate(
    settings: Settings,
    metrics_emitter: MetricsEmitter,
    dynamodb: DynamoDBClient | None,
    pool_size: int,
    runner: JobRunner,
) -> DeliveryHooks | None:
    """The job ledger's claim and records, unless JOB_LEDGER_TABLE is empty (then at-least-once only)."""
    if not settings.job_ledger_table:
        return None
    ledger = JobLedger(
        dynamodb=dynamodb or aws.dynamodb_client(pool_size),
        table_name=settings.job_ledger_table,
        lease_seconds=settings.visibility_timeout_seconds,
        retention_days=settings.job_ledger_retention_days,
    )
    return LedgerGate(
        ledger=ledger,
        unavailable_policy=settings.job_ledger_unavailable,
        metrics_emitter=metrics_emitter,
        signals=runner,
        validator=runner.validate,
        max_receive_count=settings.max_receive_count,
    )
