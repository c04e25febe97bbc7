"""Assembles the main_job consumer: the trigger queue, batch dispatch, and the background queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common import aws
from common.metrics import MetricsEmitter
from common.names import MAIN_JOB_SERVICE
from common.settings import Settings
from common.sqs.consumer import Consumer
from common.sqs.dispatch import BatchDispatcher
from common.sqs.shutdown import Shutdown
from common.worker import build_consumer
from main_job.triggers import TriggerHandler

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def build(settings: Settings, shutdown: Shutdown, sqs: SQSClient | None = None) -> Consumer:
    client = sqs or aws.sqs_client()
    handler = TriggerHandler(
        sqs=client,
        background_queue_url=settings.background_queue_url,
        metrics_emitter=MetricsEmitter(settings.metrics_namespace, MAIN_JOB_SERVICE),
    )
    return build_consumer(
        settings=settings,
        sqs=client,
        queue_url=settings.trigger_queue_url,
        dlq_url=settings.trigger_dlq_url,
        shutdown=shutdown,
        make_dispatcher=lambda: BatchDispatcher(handler),
    )
