"""Creates the fleet's queues and log groups as Terraform does on AWS: same names, same redrive wiring."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.ledger.schema import (
    ATTR_EXPIRES_AT,
    ATTR_FAILED_DAY,
    ATTR_JOB_ID,
    ATTR_QUEUED_DAY,
    DAY_INDEX,
    FAILURES_INDEX,
)
from common.messages import MAX_TRIGGER_BYTES, QUEUE_MAX_MESSAGE_BYTES
from common.names import FleetNames

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sqs import SQSClient

#: Retention as in tf/: a DLQ keeps its messages longer than its source queue (4 days vs 14).
SOURCE_RETENTION_SECONDS = 4 * 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
#: As tf/sqs.tf sets them: the trigger queue leaves room for the background message's envelope, so a
#: trigger SQS accepts always fits in its background message (common.messages); the emulator counts a
#: message's size as AWS does, in bytes with its attributes (fleet.local.sqs_validation).
MAXIMUM_MESSAGE_SIZE_BYTES = QUEUE_MAX_MESSAGE_BYTES
TRIGGER_MAXIMUM_MESSAGE_SIZE_BYTES = MAX_TRIGGER_BYTES


@dataclass(frozen=True, slots=True)
class QueueUrls:
    trigger: str
    trigger_dlq: str
    background: str
    background_dlq: str


def provision(
    *,
    sqs: SQSClient,
    logs: CloudWatchLogsClient,
    names: FleetNames,
    visibility_timeout: int,
    max_receive_count: int,
    receive_wait_seconds: int = 20,
    dynamodb: Any = None,  # noqa: ANN401 - a DynamoDB client (no mypy_boto3_dynamodb stubs installed); None: no ledger
) -> QueueUrls:
    """Create (or re-use) the four queues, two log groups and (given ``dynamodb``) the job ledger; idempotent."""
    urls = {}
    size = str(MAXIMUM_MESSAGE_SIZE_BYTES)
    for source, dlq in names.queues().items():
        source_size = str(TRIGGER_MAXIMUM_MESSAGE_SIZE_BYTES if source == names.trigger_queue else size)
        dlq_url = sqs.create_queue(
            QueueName=dlq, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS), "MaximumMessageSize": size}
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        source_url = sqs.create_queue(
            QueueName=source,
            Attributes={
                "VisibilityTimeout": str(visibility_timeout),
                "ReceiveMessageWaitTimeSeconds": str(receive_wait_seconds),
                "MessageRetentionPeriod": str(SOURCE_RETENTION_SECONDS),
                "MaximumMessageSize": source_size,
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}),
            },
        )["QueueUrl"]
        source_arn = sqs.get_queue_attributes(QueueUrl=source_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sqs.set_queue_attributes(
            QueueUrl=dlq_url,
            Attributes={
                "RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [source_arn]})
            },
        )
        urls[source], urls[dlq] = source_url, dlq_url
    for group in (names.main_job_log_group, names.background_job_log_group):
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
    if dynamodb is not None:
        provision_job_ledger(dynamodb, names.job_ledger_table)
    return QueueUrls(
        trigger=urls[names.trigger_queue],
        trigger_dlq=urls[names.trigger_dlq],
        background=urls[names.background_queue],
        background_dlq=urls[names.background_dlq],
    )


def provision_job_ledger(dynamodb: Any, table: str) -> None:  # noqa: ANN401 - no dynamodb stubs installed
    """The job ledger as tf/ creates it: key jobId, GSIs by-day and failures (keys only), TTL expiresAt."""
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):  # idempotent
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"}
                for name in (ATTR_JOB_ID, ATTR_QUEUED_DAY, ATTR_FAILED_DAY)
            ],
            KeySchema=[{"AttributeName": ATTR_JOB_ID, "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                _day_index(DAY_INDEX, ATTR_QUEUED_DAY),
                _day_index(FAILURES_INDEX, ATTR_FAILED_DAY),
            ],
        )
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": ATTR_EXPIRES_AT}
    )


def _day_index(name: str, day_attribute: str) -> dict[str, Any]:
    """A GSI keyed on a UTC day and the job ID, projecting keys only (tf/dynamodb.tf)."""
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": day_attribute, "KeyType": "HASH"},
            {"AttributeName": ATTR_JOB_ID, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
