"""Provisioning the fleet's resources as Terraform does."""

from __future__ import annotations

import boto3
from moto import mock_aws

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
from fleet.local.provision import provision

NAMES = FleetNames.for_deployment("fleet-test", "test")


def _provision_twice() -> tuple[object, object]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    logs = boto3.client("logs", region_name="us-east-1")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for _ in range(2):  # idempotent
        urls = provision(sqs=sqs, logs=logs, dynamodb=dynamodb, names=NAMES, visibility_timeout=30, max_receive_count=3)
    return sqs, (dynamodb, urls)


def test_job_ledger_table_has_the_contracts_key_indexes_and_ttl() -> None:
    """The ledger table under the Terraform name: jobId key, by-day and failures (day, jobId, KEYS_ONLY), TTL."""
    with mock_aws():
        _, (dynamodb, _) = _provision_twice()
        table = dynamodb.describe_table(TableName=NAMES.job_ledger_table)["Table"]  # type: ignore[attr-defined]
        ttl = dynamodb.describe_time_to_live(TableName=NAMES.job_ledger_table)  # type: ignore[attr-defined]

    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert [{"AttributeName": ATTR_JOB_ID, "KeyType": "HASH"}] == table["KeySchema"]
    assert "PAY_PER_REQUEST" == table["BillingModeSummary"]["BillingMode"]
    assert {DAY_INDEX, FAILURES_INDEX} == set(indexes)
    for name, day in ((DAY_INDEX, ATTR_QUEUED_DAY), (FAILURES_INDEX, ATTR_FAILED_DAY)):
        assert [
            {"AttributeName": day, "KeyType": "HASH"},
            {"AttributeName": ATTR_JOB_ID, "KeyType": "RANGE"},
        ] == indexes[name]["KeySchema"]
        assert {"ProjectionType": "KEYS_ONLY"} == indexes[name]["Projection"]
    assert {"TimeToLiveStatus": "ENABLED", "AttributeName": ATTR_EXPIRES_AT} == ttl["TimeToLiveDescription"]


def test_queues_have_terraforms_maximum_message_sizes() -> None:
    """The trigger queue leaves room for the background envelope; the others take 256 KiB, as tf/sqs.tf sets."""
    with mock_aws():
        sqs, (_, urls) = _provision_twice()
        sizes = [
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])[  # type: ignore[attr-defined]
                "Attributes"
            ]["MaximumMessageSize"]
            for url in (urls.trigger, urls.trigger_dlq, urls.background, urls.background_dlq)  # type: ignore[attr-defined]
        ]

    assert [str(MAX_TRIGGER_BYTES)] + [str(QUEUE_MAX_MESSAGE_BYTES)] * 3 == sizes
